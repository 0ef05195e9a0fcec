import { concrete, defaultRng, type Tensor } from '../engine/core.js';
import type { Rng } from '../util/rng.js';

/**
 * PyTorch's initializers, drawn from the host RNG (the engine's default generator unless one is given), so a
 * seeded run builds the same weights every time.
 */
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function uniform(shape: readonly number[], lo: number, hi: number, rng: Rng = defaultRng()): Tensor {
  if (loading > 0) return placeholder(shape);
  const u = rng.uniform(size(shape));
  for (let i = 0; i < u.length; i++) u[i] = lo + (hi - lo) * u[i]!;
  return concrete(u, shape, 'float32');
}

export function normal(shape: readonly number[], std = 1, mean = 0, rng: Rng = defaultRng()): Tensor {
  if (loading > 0) return placeholder(shape);
  return concrete(rng.normal(size(shape), mean, std), shape, 'float32');
}

/**
 * A random initial value of a model built for loading: zeros, never drawn. The memory of a large zero-filled array
 * is mapped by the OS on first write, so these never become resident (a 632 M-parameter model builds in no time and
 * no memory before its weights are read).
 */
function placeholder(shape: readonly number[]): Tensor {
  return concrete(new Float32Array(size(shape)), shape, 'float32');
}

export function constant(shape: readonly number[], value: number): Tensor {
  return concrete(new Float32Array(size(shape)).fill(value), shape, 'float32');
}

/** fan_in / fan_out as torch.nn.init computes them: dim 1 × receptive field, dim 0 × receptive field. */
export function fans(shape: readonly number[]): [number, number] {
  const rf = shape.length > 2 ? size(shape.slice(2)) : 1;
  return [shape.length > 1 ? shape[1]! * rf : shape[0]!, shape[0]! * rf];
}

/** kaiming_uniform_(a=√5): PyTorch's default for Linear and Conv weights, U(±1/√fan_in). */
export function kaimingUniformDefault(shape: readonly number[], rng?: Rng): Tensor {
  const bound = 1 / Math.sqrt(fans(shape)[0]);
  return uniform(shape, -bound, bound, rng);
}

/** The matching default bias: U(±1/√fan_in) with the weight's fan_in. */
export function defaultBias(n: number, weightShape: readonly number[], rng?: Rng): Tensor {
  const fanIn = fans(weightShape)[0];
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform([n], -bound, bound, rng);
}

export function xavierUniform(shape: readonly number[], gain = 1, rng?: Rng): Tensor {
  const [fi, fo] = fans(shape);
  const bound = gain * Math.sqrt(6 / (fi + fo));
  return uniform(shape, -bound, bound, rng);
}

let loading = 0;

/**
 * Runs `build`, which builds a model whose weights are loaded right after (strictly: every one of them): a model's
 * own initialisation that computes with the engine (LARP's patch-embedding centring and routed init) is skipped, so
 * building needs no engine run and works on a backend without synchronous runs, and random initial values are not
 * drawn (`placeholder`; nor is the generator advanced).
 */
export function buildForLoading<T>(build: () => T): T {
  loading++;
  try {
    return build();
  } finally {
    loading--;
  }
}

/** Whether the model being built gets its weights loaded afterwards (inside buildForLoading). */
export function loadingWeights(): boolean {
  return loading > 0;
}
