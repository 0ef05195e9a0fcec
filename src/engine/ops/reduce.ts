import { apply1, defineOp, notDifferentiable } from '../op.js';
import { normAxes, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { cast, div, equal, exp, mul, square, sub, where } from './elementwise.js';
import { broadcastTo, reshape } from './movement.js';

/** Reductions over any set of axes, with keepdims. */

interface ReduceAttrs {
  axes: number[];
  keepdims: boolean;
}

function reducedShape(shape: readonly number[], axes: number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** The output (or its cotangent) reshaped with the reduced axes kept as 1, ready to broadcast against the input. */
function keep(t: Tensor, x: Tensor, a: ReduceAttrs): Tensor {
  return a.keepdims ? t : reshape(t, reducedShape(x.shape, a.axes, true));
}

function reduceOp(name: string, onnx: string, vjp: (g: Tensor, x: Tensor, y: Tensor, a: ReduceAttrs) => Tensor) {
  const op = defineOp<ReduceAttrs>({
    name,
    infer: ([x], a) => [{ shape: reducedShape(x.shape, a.axes, a.keepdims), dtype: x.dtype }],
    lower: (ctx, [x], [y], a) => ctx.emit(onnx, [x, ctx.i64(a.axes)], [y], { keepdims: a.keepdims ? 1 : 0 }),
    vjp: ([g], { inputs: [x], outputs: [y], attrs }) => [vjp(g!, x, y, attrs)],
  });
  return (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => {
    const ax = normAxes(axes, x.rank);
    if (ax.length === 0) return x;
    return apply1(op, [x], { axes: ax, keepdims });
  };
}

function count(x: Tensor, a: ReduceAttrs): number {
  return a.axes.reduce((n, i) => n * x.shape[i]!, 1);
}

/** Max/min route the gradient to the elements equal to the result, split evenly between ties. */
function extremumVjp(g: Tensor, x: Tensor, y: Tensor, a: ReduceAttrs): Tensor {
  const hit = cast(equal(x, keep(y, x, a)), x.dtype);
  const ties = sum(hit, a.axes, true);
  return mul(hit, div(keep(g, x, a), ties));
}

export const sum = reduceOp('sum', 'ReduceSum', (g, x, _y, a) => broadcastTo(keep(g, x, a), x.shape));
export const mean = reduceOp('mean', 'ReduceMean', (g, x, _y, a) =>
  broadcastTo(div(keep(g, x, a), count(x, a)), x.shape),
);
export const max = reduceOp('max', 'ReduceMax', extremumVjp);
export const min = reduceOp('min', 'ReduceMin', extremumVjp);
export const logsumexp = reduceOp('logsumexp', 'ReduceLogSumExp', (g, x, y, a) =>
  mul(keep(g, x, a), exp(sub(x, keep(y, x, a)))),
);

/** Variance over `axes`; `correction` 1 gives the unbiased estimate (torch.var's default), 0 the population one. */
export function variance(x: Tensor, axes?: number | readonly number[], keepdims = false, correction = 0): Tensor {
  const ax = normAxes(axes, x.rank);
  const n = ax.reduce((c, i) => c * x.shape[i]!, 1);
  const centered = sub(x, mean(x, ax, true));
  const s = sum(square(centered), ax, keepdims);
  return div(s, Math.max(n - correction, 1));
}

interface ArgAttrs {
  axis: number;
  keepdims: boolean;
}
function argOp(name: string, onnx: string) {
  const op = defineOp<ArgAttrs>({
    name,
    infer: ([x], a) => [{ shape: reducedShape(x.shape, [a.axis], a.keepdims), dtype: 'int64' }],
    lower: (ctx, ins, outs, a) => ctx.emit(onnx, ins, outs, { axis: a.axis, keepdims: a.keepdims ? 1 : 0 }),
    vjp: notDifferentiable('integer index output'),
  });
  return (x: Tensor, axis = -1, keepdims = false): Tensor =>
    apply1(op, [x], { axis: normAxis(axis, x.rank), keepdims });
}

/** Index of the first maximum (minimum) along an axis, as int64. */
export const argmax = argOp('argmax', 'ArgMax');
export const argmin = argOp('argmin', 'ArgMin');

interface CumsumAttrs {
  axis: number;
  reverse: boolean;
  exclusive: boolean;
}
const cumsumOp = defineOp<CumsumAttrs>({
  name: 'cumsum',
  infer: ([x]) => [{ shape: [...x.shape], dtype: x.dtype }],
  lower: (ctx, [x], outs, a) =>
    ctx.emit('CumSum', [x, ctx.i64([a.axis], [])], outs, {
      reverse: a.reverse ? 1 : 0,
      exclusive: a.exclusive ? 1 : 0,
    }),
  // y_i = Σ_{j ≤ i} x_j, so dx_j = Σ_{i ≥ j} g_i: the same scan in the other direction (exclusivity kept).
  vjp: ([g], { inputs: [x], attrs: a }) => [
    cumsum(g!, a.axis - x.rank, { reverse: !a.reverse, exclusive: a.exclusive }),
  ],
});

/** Running sum along an axis (`reverse`: from the end; `exclusive`: each element left out of its own sum). */
export function cumsum(x: Tensor, axis: number, opts: { reverse?: boolean; exclusive?: boolean } = {}): Tensor {
  return apply1(cumsumOp, [x], { axis: normAxis(axis, x.rank), reverse: !!opts.reverse, exclusive: !!opts.exclusive });
}

/** Mean over all elements that are not masked out (mask true = counted). */
export function maskedMean(x: Tensor, maskTensor: Tensor): Tensor {
  const m = cast(maskTensor, x.dtype);
  return div(sum(where(maskTensor, x, 0)), maximumScalar(sum(m), 1));
}

function maximumScalar(x: Tensor, v: number): Tensor {
  return where(equal(x, 0), v, x);
}
