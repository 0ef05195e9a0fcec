import { numel } from '../dtype.js';
import { apply, apply1, defineOp } from '../op.js';
import { broadcastShapes, fmt, invertPerm, normAxis, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { tensor, zeros } from './creation.js';
import { sumTo } from './elementwise.js';
import { scatterAdd } from './indexing.js';
import { sum } from './reduce.js';

/** Movement ops: reshape, transpose, broadcast, slice, concat, split, pad, tile, and compositions of them. */

const reshapeOp = defineOp<{ shape: number[] }>({
  name: 'reshape',
  infer([x], a) {
    if (numel(a.shape) !== numel(x.shape)) throw new Error(`cannot reshape ${fmt(x.shape)} to ${fmt(a.shape)}`);
    return [{ shape: a.shape, dtype: x.dtype }];
  },
  lower: (ctx, [x], [y], a) => ctx.emit('Reshape', [x, ctx.i64(a.shape)], [y]),
  vjp: ([g], { inputs: [x] }) => [reshape(g!, x.shape)],
});

/** Reshape; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const hole = s.indexOf(-1);
  if (hole >= 0) {
    const rest = s.reduce((n, d, i) => (i === hole ? n : n * d), 1);
    s[hole] = rest === 0 ? 0 : numel(x.shape) / rest;
    if (!Number.isInteger(s[hole])) throw new Error(`cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  if (sameShape(s, x.shape)) return x;
  return apply1(reshapeOp, [x], { shape: s });
}

const transposeOp = defineOp<{ perm: number[] }>({
  name: 'transpose',
  infer([x], a) {
    if (a.perm.length !== x.shape.length || [...a.perm].sort().some((p, i) => p !== i)) {
      throw new Error(`bad permutation [${a.perm}] for rank ${x.shape.length}`);
    }
    return [{ shape: a.perm.map((p) => x.shape[p]!), dtype: x.dtype }];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('Transpose', ins, outs, { perm: a.perm }),
  vjp: ([g], { attrs }) => [transpose(g!, invertPerm(attrs.perm))],
});

export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ? perm.map((a) => normAxis(a, x.rank)) : Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
  if (p.every((v, i) => v === i)) return x;
  return apply1(transposeOp, [x], { perm: p });
}

/** Swaps two axes (matrix transpose of the last two by default). */
export function swapAxes(x: Tensor, a = -2, b = -1): Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const [i, j] = [normAxis(a, x.rank), normAxis(b, x.rank)];
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return transpose(x, perm);
}

/** Moves axis `from` to position `to`. */
export function moveAxis(x: Tensor, from: number, to: number): Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const f = normAxis(from, x.rank);
  perm.splice(f, 1);
  perm.splice(normAxis(to, x.rank), 0, f);
  return transpose(x, perm);
}

const expandOp = defineOp<{ shape: number[] }>({
  name: 'broadcastTo',
  infer([x], a) {
    const out = broadcastShapes(x.shape, a.shape);
    if (!sameShape(out, a.shape)) throw new Error(`cannot broadcast ${fmt(x.shape)} to ${fmt(a.shape)}`);
    return [{ shape: a.shape, dtype: x.dtype }];
  },
  lower: (ctx, [x], [y], a) => ctx.emit('Expand', [x, ctx.i64(a.shape)], [y]),
  vjp: ([g], { inputs: [x] }) => [sumTo(g!, x.shape)],
});

export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return sameShape(x.shape, shape) ? x : apply1(expandOp, [x], { shape: [...shape] });
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const s = [...x.shape];
  s.splice(axis < 0 ? axis + x.rank + 1 : axis, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  const list =
    axes === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : [axes].flat().map((a) => normAxis(a, x.rank));
  for (const a of list) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of ${fmt(x.shape)} is not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => !list.includes(i)),
  );
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  const s = normAxis(start, x.rank),
    e = normAxis(end, x.rank);
  const mid = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

// ---- slicing ----

export interface SliceSpec {
  start: number;
  end: number;
  step: number;
}
interface SliceAttrs {
  axes: number[];
  specs: SliceSpec[];
}

/** Python slice semantics (negative indices, clamping, negative steps) resolved to concrete bounds. */
function resolve(
  dim: number,
  start: number | undefined,
  end: number | undefined,
  step: number,
): SliceSpec & { len: number } {
  if (step === 0) throw new Error('slice step cannot be 0');
  const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
  let s: number, e: number;
  if (step > 0) {
    s = start === undefined ? 0 : norm(start, 0, dim);
    e = end === undefined ? dim : norm(end, 0, dim);
  } else {
    s = start === undefined ? dim - 1 : norm(start, -1, dim - 1);
    e = end === undefined ? -1 : norm(end, -1, dim - 1);
  }
  const len = Math.max(0, Math.ceil((e - s) / step));
  return { start: s, end: e, step, len };
}

function sliceIndices(spec: SliceSpec, len: number): number[] {
  return Array.from({ length: len }, (_, i) => spec.start + i * spec.step);
}

const sliceOp = defineOp<SliceAttrs>({
  name: 'slice',
  infer([x], a) {
    const shape = [...x.shape];
    a.axes.forEach((ax, i) => {
      const s = a.specs[i]!;
      shape[ax] = Math.max(0, Math.ceil((s.end - s.start) / s.step));
    });
    return [{ shape, dtype: x.dtype }];
  },
  lower(ctx, [x], [y], a, node) {
    // ONNX Slice takes exclusive ends; a negative step running to the front needs an end below -dim.
    const ends = a.specs.map((s, i) => (s.end === -1 && s.step < 0 ? -node.inputs[0].shape[a.axes[i]!]! - 1 : s.end));
    ctx.emit(
      'Slice',
      [x, ctx.i64(a.specs.map((s) => s.start)), ctx.i64(ends), ctx.i64(a.axes), ctx.i64(a.specs.map((s) => s.step))],
      [y],
    );
  },
  vjp([g], { inputs: [x], outputs: [y], attrs }) {
    // Contiguous slices are undone by zero padding; strided or reversed ones scatter back along each axis.
    if (attrs.specs.every((s) => s.step === 1)) {
      const pads = x.shape.map((): [number, number] => [0, 0]);
      attrs.axes.forEach((ax, i) => {
        pads[ax] = [attrs.specs[i]!.start, x.shape[ax]! - attrs.specs[i]!.end];
      });
      return [pad(g!, pads)];
    }
    let grad = g!;
    for (let i = attrs.axes.length - 1; i >= 0; i--) {
      const ax = attrs.axes[i]!;
      const idx = sliceIndices(attrs.specs[i]!, y.shape[ax]!);
      grad = scatterAlongAxis(grad, ax, idx, x.shape[ax]!);
    }
    return [grad];
  },
});

/** Gradient of taking positions `idx` along `axis` from a dimension of size `dim`: scatter-add back into zeros. */
export function scatterAlongAxis(g: Tensor, axis: number, idx: number[], dim: number): Tensor {
  const outShape = [...g.shape];
  outShape[axis] = dim;
  const idxShape = g.shape.map((_, i) => (i === axis ? idx.length : 1));
  const index = broadcastTo(tensor(idx, idxShape, 'int64'), g.shape);
  return scatterAdd(zeros(outShape, g.dtype), axis, index, g);
}

/**
 * slice(x, {axis: [start, end, step?]}) with Python semantics; e.g. slice(x, {2: [0, -1]}),
 * slice(x, {1: [null, null, -1]}).
 */
export function slice(
  x: Tensor,
  ranges: Record<number, [number | null | undefined, (number | null)?, number?]>,
): Tensor {
  const axes: number[] = [],
    specs: SliceSpec[] = [];
  for (const [k, [s, e, st]] of Object.entries(ranges)) {
    const ax = normAxis(Number(k), x.rank);
    const r = resolve(x.shape[ax]!, s ?? undefined, e ?? undefined, st ?? 1);
    if (r.start === 0 && r.step === 1 && r.len === x.shape[ax]) continue;
    axes.push(ax);
    specs.push({ start: r.start, end: r.end, step: r.step });
  }
  if (axes.length === 0) return x;
  return apply1(sliceOp, [x], { axes, specs });
}

/** Narrow along one axis: positions [start, start+length). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  return slice(x, { [normAxis(axis, x.rank)]: [start, start + length] });
}

export function flip(x: Tensor, axes: number | number[]): Tensor {
  const r: Record<number, [null, null, number]> = {};
  for (const a of [axes].flat()) r[normAxis(a, x.rank)] = [null, null, -1];
  return slice(x, r);
}

// ---- concat / split ----

const concatOp = defineOp<{ axis: number }>({
  name: 'concat',
  infer(xs, a) {
    const first = xs[0];
    const shape = [...first.shape];
    shape[a.axis] = 0;
    for (const x of xs) {
      if (
        x.dtype !== first.dtype ||
        x.shape.length !== first.shape.length ||
        x.shape.some((d, i) => i !== a.axis && d !== first.shape[i])
      ) {
        throw new Error(
          `concat along ${a.axis}: ${xs.map((t) => `${t.dtype}${fmt(t.shape)}`).join(', ')} do not match`,
        );
      }
      shape[a.axis]! += x.shape[a.axis]!;
    }
    return [{ shape, dtype: first.dtype }];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('Concat', ins, outs, { axis: a.axis }),
  vjp([g], { inputs, attrs }, needs) {
    let off = 0;
    return inputs.map((x, i) => {
      const n = x.shape[attrs.axis]!;
      const part = needs[i] ? narrow(g!, attrs.axis, off, n) : null;
      off += n;
      return part;
    });
  },
});

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat of nothing');
  if (xs.length === 1) return xs[0]!;
  return apply1(concatOp, xs, { axis: normAxis(axis, xs[0]!.rank) });
}

export function stack(xs: Tensor[], axis = 0): Tensor {
  const ax = axis < 0 ? axis + xs[0]!.rank + 1 : axis;
  return concat(
    xs.map((x) => unsqueeze(x, ax)),
    ax,
  );
}

const splitOp = defineOp<{ axis: number; sizes: number[] }>({
  name: 'split',
  infer([x], a) {
    if (a.sizes.reduce((s, n) => s + n, 0) !== x.shape[a.axis])
      throw new Error(`split sizes [${a.sizes}] do not add up to ${x.shape[a.axis]}`);
    return a.sizes.map((n) => ({ shape: x.shape.map((d, i) => (i === a.axis ? n : d)), dtype: x.dtype }));
  },
  lower: (ctx, [x], outs, a) => ctx.emit('Split', [x, ctx.i64(a.sizes)], outs, { axis: a.axis }),
  vjp(cts, { outputs, attrs }) {
    return [
      concat(
        cts.map((g, i) => g ?? zeros(outputs[i]!.shape, outputs[i]!.dtype)),
        attrs.axis,
      ),
    ];
  },
});

/** Splits into pieces of the given sizes, or into `n` equal pieces. */
export function split(x: Tensor, sizesOrCount: number | number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, x.rank);
  const sizes = typeof sizesOrCount === 'number' ? Array(sizesOrCount).fill(x.shape[ax]! / sizesOrCount) : sizesOrCount;
  if (sizes.some((s) => !Number.isInteger(s)))
    throw new Error(`cannot split ${x.shape[ax]} into ${sizesOrCount} equal parts`);
  if (sizes.length === 1) return [x];
  return apply(splitOp, [x], { axis: ax, sizes });
}

// ---- padding ----

export type PadMode = 'constant' | 'edge' | 'reflect';
interface PadAttrs {
  pads: [number, number][];
  mode: PadMode;
  value: number;
}

/** Source index along one axis for each padded position (the gather that edge/reflect padding performs). */
function padSource(dim: number, before: number, after: number, mode: PadMode): number[] {
  return Array.from({ length: dim + before + after }, (_, j) => {
    let i = j - before;
    if (mode === 'edge') return Math.min(Math.max(i, 0), dim - 1);
    const period = 2 * (dim - 1);
    if (period === 0) return 0;
    i = ((i % period) + period) % period;
    return i < dim ? i : period - i;
  });
}

const padOp = defineOp<PadAttrs>({
  name: 'pad',
  infer([x], a) {
    if (a.pads.length !== x.shape.length) throw new Error(`pad needs ${x.shape.length} [before, after] pairs`);
    if (a.mode === 'reflect' && a.pads.some(([b, e], i) => b >= x.shape[i]! || e >= x.shape[i]!)) {
      throw new Error(
        `reflect padding must be smaller than the dimension (${fmt(x.shape)}, pads ${JSON.stringify(a.pads)})`,
      );
    }
    return [{ shape: x.shape.map((d, i) => d + a.pads[i]![0] + a.pads[i]![1]), dtype: x.dtype }];
  },
  lower(ctx, [x], [y], a, node) {
    const pads = [...a.pads.map((p) => p[0]), ...a.pads.map((p) => p[1])];
    const value = a.mode === 'constant' ? ctx.scalar(a.value, node.inputs[0].dtype) : '';
    ctx.emit('Pad', [x, ctx.i64(pads), value], [y], { mode: a.mode });
  },
  vjp([g], { inputs: [x], attrs }) {
    if (attrs.mode === 'constant') {
      const r: Record<number, [number, number]> = {};
      attrs.pads.forEach(([b], i) => {
        r[i] = [b, b + x.shape[i]!];
      });
      return [slice(g!, r)];
    }
    let grad = g!;
    for (let ax = x.rank - 1; ax >= 0; ax--) {
      const [b, e] = attrs.pads[ax]!;
      if (b === 0 && e === 0) continue;
      grad = scatterAlongAxis(grad, ax, padSource(x.shape[ax]!, b, e, attrs.mode), x.shape[ax]!);
    }
    return [grad];
  },
});

/** Pads with [before, after] per axis (all axes, or the trailing ones when fewer pairs are given). */
export function pad(x: Tensor, pads: [number, number][], mode: PadMode = 'constant', value = 0): Tensor {
  const full: [number, number][] = [...Array(x.rank - pads.length).fill([0, 0]), ...pads];
  if (full.every(([b, e]) => b === 0 && e === 0)) return x;
  if (full.some(([b, e]) => b < 0 || e < 0)) throw new Error('negative padding: use slice');
  return apply1(padOp, [x], { pads: full, mode, value });
}

// ---- tile ----

const tileOp = defineOp<{ reps: number[] }>({
  name: 'tile',
  infer: ([x], a) => [{ shape: x.shape.map((d, i) => d * a.reps[i]!), dtype: x.dtype }],
  lower: (ctx, [x], [y], a) => ctx.emit('Tile', [x, ctx.i64(a.reps)], [y]),
  vjp([g], { inputs: [x], attrs }) {
    const split = x.shape.flatMap((d, i) => [attrs.reps[i]!, d]);
    const repAxes = x.shape.map((_, i) => 2 * i);
    return [reshape(sum(reshape(g!, split), repAxes), x.shape)];
  },
});

export function tile(x: Tensor, reps: number[]): Tensor {
  if (reps.length !== x.rank) throw new Error(`tile needs ${x.rank} repetition counts`);
  return apply1(tileOp, [x], { reps });
}

// ---- depth-to-space / space-to-depth ----

/**
 * Depth-to-space over the trailing spatial axes of N×C×(T×)H×W, with factors per axis. Channels are read as
 * (C_out, f_1, …, f_k) — PyTorch pixel_shuffle's order (ONNX's "CRD"), generalised to 3D (t, h, w).
 */
export function depthToSpace(x: Tensor, factors: number[]): Tensor {
  const k = factors.length;
  const [n, c, ...sp] = x.shape as [number, number, ...number[]];
  if (sp.length !== k) throw new Error(`depthToSpace: ${k} factors for ${sp.length} spatial axes`);
  const f = factors.reduce((a, b) => a * b, 1);
  if (c % f !== 0) throw new Error(`depthToSpace: ${c} channels not divisible by ${f}`);
  const co = c / f;
  const y = reshape(x, [n, co, ...factors, ...sp]);
  // [n, co, f1..fk, s1..sk] → [n, co, s1, f1, s2, f2, …]
  const perm = [0, 1, ...sp.flatMap((_, i) => [2 + k + i, 2 + i])];
  return reshape(transpose(y, perm), [n, co, ...sp.map((s, i) => s * factors[i]!)]);
}

export function spaceToDepth(x: Tensor, factors: number[]): Tensor {
  const k = factors.length;
  const [n, c, ...sp] = x.shape as [number, number, ...number[]];
  if (sp.length !== k || sp.some((s, i) => s % factors[i]! !== 0))
    throw new Error(`spaceToDepth: ${fmt(x.shape)} not divisible by [${factors}]`);
  const y = reshape(x, [n, c, ...sp.flatMap((s, i) => [s / factors[i]!, factors[i]!])]);
  // [n, c, s1, f1, s2, f2, …] → [n, c, f1..fk, s1..sk]
  const perm = [0, 1, ...factors.map((_, i) => 3 + 2 * i), ...factors.map((_, i) => 2 + 2 * i)];
  const f = factors.reduce((a, b) => a * b, 1);
  return reshape(transpose(y, perm), [n, c * f, ...sp.map((s, i) => s / factors[i]!)]);
}
