import { allocate, type DType, hostArray, numel } from '../dtype.js';
import { apply1, defineOp, notDifferentiable } from '../op.js';
import type { Rng } from '../../util/rng.js';
import { concrete, currentGraph, type NoiseDist, type Tensor } from '../tensor.js';
import { defaultRng } from '../random.js';

/** Tensors from values, filled tensors, ranges, and noise. */

export type TensorLike = Tensor | number;

/** A concrete tensor from numbers (nested shape given explicitly). */
export function tensor(
  values: ArrayLike<number>,
  shape: readonly number[] = [values.length],
  dtype: DType = 'float32',
): Tensor {
  return concrete(hostArray(dtype, values), shape, dtype);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return tensor([value], [], dtype);
}

/** Numbers become scalars of the other operand's dtype; tensors pass through. */
export function lift(x: TensorLike, dtype: DType): Tensor {
  return typeof x === 'number' ? scalar(x, dtype) : x;
}

interface FullAttrs {
  shape: number[];
  value: number;
  dtype: DType;
}

/** A filled tensor. Traced as ConstantOfShape, so a large zeros() costs no initializer bytes in the model. */
const fullOp = defineOp<FullAttrs>({
  name: 'full',
  infer: (_, a) => [{ shape: a.shape, dtype: a.dtype }],
  lower(ctx, _, [y], a) {
    ctx.emit('ConstantOfShape', [ctx.i64(a.shape)], [y], {
      value: { tensor: { dtype: a.dtype, values: [a.value], dims: [1] } },
    });
  },
  vjp: notDifferentiable('a constant has no inputs'),
});

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  if (currentGraph()) return apply1(fullOp, [], { shape: [...shape], value, dtype });
  const data = allocate(dtype, numel(shape));
  if (value !== 0) {
    if (data instanceof BigInt64Array) data.fill(BigInt(value));
    else (data as Float32Array).fill(value);
  }
  return concrete(data, shape, dtype);
}

export const zeros = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 0, dtype);
export const ones = (shape: readonly number[], dtype: DType = 'float32') => full(shape, 1, dtype);
export const zerosLike = (x: Tensor) => full(x.shape, 0, x.dtype);
export const onesLike = (x: Tensor) => full(x.shape, 1, x.dtype);

/** [start, start+step, …) below stop, as a constant. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'int64'): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return tensor(
    Array.from({ length: n }, (_, i) => start + i * step),
    [n],
    dtype,
  );
}

/**
 * Noise. While tracing, a random tensor is a graph input that the compiled function fills from the host RNG at
 * every call (so a resumed run continues the same stream); in eager mode it is drawn at once.
 */
export function randomUniform(shape: readonly number[]): Tensor {
  return random(shape, 'uniform');
}

export function randomNormal(shape: readonly number[]): Tensor {
  return random(shape, 'normal');
}

/** Uniform random bytes (uint8, 0‥255): a quarter of the host work and feed size of float noise, for masks. */
export function randomBytes(shape: readonly number[]): Tensor {
  return random(shape, 'bytes');
}

function random(shape: readonly number[], dist: NoiseDist): Tensor {
  const dtype = dist === 'bytes' ? 'uint8' : 'float32';
  const g = currentGraph();
  if (g) return g.addInput(shape, dtype, { kind: 'random', dist });
  return concrete(drawNoise(defaultRng(), dist, numel(shape)), shape, dtype);
}

/** Host noise for a random input (eager draws and compiled feeds alike). */
export function drawNoise(rng: Rng, dist: NoiseDist, n: number): Float32Array | Uint8Array {
  return dist === 'uniform' ? rng.uniform(n) : dist === 'normal' ? rng.normal(n) : rng.bytes(n);
}
