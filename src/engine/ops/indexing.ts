import { apply1, defineOp, notDifferentiable } from '../op.js';
import { fmt, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { zeros } from './creation.js';
import { broadcastTo, reshape } from './movement.js';

/** Gathers and scatters. Gradients of gathers are float32 scatter-adds (ScatterElements, reduction add). */

function checkIndex(t: { dtype: string }, what: string): void {
  if (t.dtype !== 'int64' && t.dtype !== 'int32') throw new Error(`${what} must be int64 or int32, got ${t.dtype}`);
}

const gatherOp = defineOp<{ axis: number }>({
  name: 'gather',
  infer([x, idx], a) {
    checkIndex(idx, 'gather indices');
    return [{ shape: [...x.shape.slice(0, a.axis), ...idx.shape, ...x.shape.slice(a.axis + 1)], dtype: x.dtype }];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('Gather', ins, outs, { axis: a.axis }),
  vjp([g], { inputs: [x, idx], attrs: { axis } }) {
    // Flatten the index dims of g into one, then scatter-add rows back along `axis`.
    const k = idx.size;
    const gShape = [...x.shape.slice(0, axis), k, ...x.shape.slice(axis + 1)];
    const g2 = reshape(g!, gShape);
    const index = broadcastTo(
      reshape(
        idx,
        gShape.map((_, i) => (i === axis ? k : 1)),
      ),
      gShape,
    );
    return [scatterAdd(zeros(x.shape, x.dtype), axis, index, g2), null];
  },
});

/** x.take(idx, axis): indices of any shape select slices along `axis` (embedding lookup is gather(table, ids, 0)). */
export function gather(x: Tensor, idx: Tensor, axis = 0): Tensor {
  return apply1(gatherOp, [x, idx], { axis: normAxis(axis, x.rank) });
}

export const embedding = (table: Tensor, ids: Tensor): Tensor => gather(table, ids, 0);

const takeAlongOp = defineOp<{ axis: number }>({
  name: 'takeAlongAxis',
  infer([x, idx]) {
    checkIndex(idx, 'takeAlongAxis indices');
    if (idx.shape.length !== x.shape.length)
      throw new Error(`indices ${fmt(idx.shape)} must have the rank of ${fmt(x.shape)}`);
    return [{ shape: idx.shape, dtype: x.dtype }];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('GatherElements', ins, outs, { axis: a.axis }),
  vjp: ([g], { inputs: [x, idx], attrs }) => [scatterAdd(zeros(x.shape, x.dtype), attrs.axis, idx, g!), null],
});

/** torch.gather / numpy.take_along_axis. */
export function takeAlongAxis(x: Tensor, idx: Tensor, axis: number): Tensor {
  return apply1(takeAlongOp, [x, idx], { axis: normAxis(axis, x.rank) });
}

const scatterAddOp = defineOp<{ axis: number }>({
  name: 'scatterAdd',
  infer([x, idx, src]) {
    checkIndex(idx, 'scatterAdd indices');
    if (idx.shape.join() !== src.shape.join())
      throw new Error(`indices ${fmt(idx.shape)} and updates ${fmt(src.shape)} differ`);
    if (x.dtype !== src.dtype) throw new Error(`dtypes differ: ${x.dtype} vs ${src.dtype}`);
    return [{ shape: x.shape, dtype: x.dtype }];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('ScatterElements', ins, outs, { axis: a.axis, reduction: 'add' }),
  vjp: ([g], { inputs: [, idx], attrs }, needs) => [g, null, needs[2] ? takeAlongAxis(g!, idx, attrs.axis) : null],
});

/** out = x; out[..., idx[i], ...] += src[i] along `axis` (torch.scatter_add). Duplicates accumulate. */
export function scatterAdd(x: Tensor, axis: number, idx: Tensor, src: Tensor): Tensor {
  return apply1(scatterAddOp, [x, idx, src], { axis: normAxis(axis, x.rank) });
}

const oneHotOp = defineOp<{ depth: number; dtype: 'float32' | 'int64' }>({
  name: 'oneHot',
  infer([idx], a) {
    checkIndex(idx, 'oneHot indices');
    return [{ shape: [...idx.shape, a.depth], dtype: a.dtype }];
  },
  lower(ctx, [idx], [y], a) {
    const values = ctx.fresh();
    ctx.emit('Constant', [], [values], { value: { tensor: { dtype: a.dtype, values: [0, 1], dims: [2] } } });
    ctx.emit('OneHot', [idx, ctx.i64([a.depth], []), values], [y], { axis: -1 });
  },
  vjp: notDifferentiable('its only input is integer indices'),
});

export function oneHot(idx: Tensor, depth: number, dtype: 'float32' | 'int64' = 'float32'): Tensor {
  return apply1(oneHotOp, [idx], { depth, dtype });
}
