import { concrete, defaultRng, type Tensor } from '../engine/core.js';
import type { Rng } from '../util/rng.js';

/**
 * PyTorch's initializers, drawn from the host RNG (the engine's default generator unless one is given), so a
 * seeded run builds the same weights every time.
 */
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function uniform(shape: readonly number[], lo: number, hi: number, rng: Rng = defaultRng()): Tensor {
  // built for loading (or for shapes only): the values are replaced, so none is drawn
  if (loading > 0) return zeros(shape);
  const u = rng.uniform(size(shape));
  for (let i = 0; i < u.length; i++) u[i] = lo + (hi - lo) * u[i]!;
  return concrete(u, shape, 'float32');
}

export function normal(shape: readonly number[], std = 1, mean = 0, rng: Rng = defaultRng()): Tensor {
  // built for loading (or for shapes only): the values are replaced, so none is drawn
  if (loading > 0) return zeros(shape);
  return concrete(rng.normal(size(shape), mean, std), shape, 'float32');
}

export function constant(shape: readonly number[], value: number): Tensor {
  if (shapesOnly) return zeros(shape);
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
let shapesOnly = 0;

/** Zero-filled, never written: the OS backs such an array with memory only once it is written. */
const zeros = (shape: readonly number[]): Tensor => concrete(new Float32Array(size(shape)), shape, 'float32');

/**
 * Runs `build` (as buildForLoading) for the names, shapes and dtypes of a model's weights only, as an import that
 * checks a checkpoint against them needs: the initialisers return zero-filled arrays without drawing or filling
 * them, so building even a model of hundreds of millions of parameters takes next to no time or resident memory.
 * The values are meaningless; the model must not be run.
 */
export function buildShapesOnly<T>(build: () => T): T {
  shapesOnly++;
  try {
    return buildForLoading(build);
  } finally {
    shapesOnly--;
  }
}

/**
 * Runs `build`, which builds a model whose weights are loaded right after (strictly: every one of them): a model's
 * own initialisation that computes with the engine (LARP's patch-embedding centring and routed init) is skipped, so
 * building needs no engine run and works on a backend without synchronous runs, and random initial values are not
 * drawn (zeros; nor is the generator advanced).
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
