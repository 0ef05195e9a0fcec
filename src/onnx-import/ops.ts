import { lift } from '../engine/ops/creation.js';
import * as E from '../engine/core.js';
import { numel } from '../engine/dtype.js';
import { concrete, type Tensor, withGraph } from '../engine/tensor.js';
import { type Attrs, type INode, tensorFromProto, typeOf } from './proto.js';

/** The ONNX importer's node mappings: each ai.onnx op type as a composition of engine ops. */
// ---- the node mappings ----

export interface NodeCtx {
  node: INode;
  opset: number;
  attrs: Attrs;
  /** Inputs by position; undefined for an omitted optional input. */
  inputs: (Tensor | undefined)[];
  /** Input i, which must be present. */
  input(i: number): Tensor;
  /** The values of input i, which must be known at trace time (a constant or a shape computation). */
  ints(i: number): number[] | undefined;
  floats(i: number): number[] | undefined;
  fail(message: string): never;
  file: string;
  baseDir: string | null;
}

export type Mapping = (c: NodeCtx) => Tensor[];

export const staticValues = (c: NodeCtx, i: number): number[] | undefined => {
  const t = c.inputs[i];
  if (!t) return undefined;
  if (!t.isConcrete) c.fail(`input ${i} ("${c.node.input![i]}") must be a constant or computed from shapes only`);
  return E.toArray(t);
};

const spatial = (x: Tensor) => x.shape.slice(2);
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const norm = (a: number, rank: number, c: NodeCtx) => {
  const v = a < 0 ? a + rank : a;
  if (v < 0 || v >= rank) c.fail(`axis ${a} is out of range for rank ${rank}`);
  return v;
};

/** Window geometry of Conv/MaxPool/AveragePool: kernel, strides, dilations and [begin, end] pads per spatial axis. */
function windowAttrs(c: NodeCtx, x: Tensor, kernel: number[], ceil = false) {
  const k = kernel.length,
    sp = spatial(x);
  if (sp.length !== k) c.fail(`kernel_shape has ${k} entries for ${sp.length} spatial axes (input ${x.describe()})`);
  const strides = c.attrs.ints('strides') ?? Array(k).fill(1);
  const dilations = c.attrs.ints('dilations') ?? Array(k).fill(1);
  if (strides.length !== k || dilations.length !== k) c.fail(`strides and dilations need ${k} entries`);
  const autoPad = c.attrs.string('auto_pad', 'NOTSET');
  let pads: [number, number][];
  if (autoPad === 'NOTSET') {
    const p = c.attrs.ints('pads') ?? Array(2 * k).fill(0);
    if (p.length !== 2 * k) c.fail(`pads needs ${2 * k} entries, got ${p.length}`);
    pads = range(k).map((i) => [p[i], p[i + k]]);
  } else if (autoPad === 'VALID') {
    pads = range(k).map(() => [0, 0]);
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = range(k).map((i) => {
      const out = Math.ceil(sp[i]! / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i]! - 1) * dilations[i] + 1 - sp[i]!);
      const small = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
    });
  } else c.fail(`auto_pad "${autoPad}" is not an ONNX value`);
  if (pads.some(([b, e]) => b < 0 || e < 0)) c.fail('negative pads are not supported');
  // Output sizes; ceil mode drops a last window that would start in the end padding (ONNX / PyTorch rule).
  const out = range(k).map((i) => {
    const span = sp[i]! + pads[i]![0] + pads[i]![1] - ((kernel[i]! - 1) * dilations[i] + 1);
    if (span < 0)
      c.fail(`the window (kernel ${kernel[i]}, dilation ${dilations[i]}) is larger than the padded input ${sp[i]}`);
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    if (ceil && (o - 1) * strides[i] >= sp[i]! + pads[i]![0]) o--;
    return o;
  });
  // End padding the windows actually reach (ceil mode can reach past the declared pads).
  const extra = range(k).map((i) =>
    Math.max(
      0,
      (out[i]! - 1) * strides[i] + (kernel[i]! - 1) * dilations[i] + 1 - (sp[i]! + pads[i]![0] + pads[i]![1]),
    ),
  );
  return { kernel, strides, dilations, pads, out, extra };
}

function kernelOf(c: NodeCtx, fallback?: number[]): number[] {
  const k = c.attrs.ints('kernel_shape') ?? fallback;
  if (!k) c.fail('kernel_shape is required');
  return k;
}

const LOWEST = -3.4028234663852886e38;

function maxPool(c: NodeCtx): Tensor[] {
  c.attrs.only('kernel_shape', 'strides', 'dilations', 'pads', 'auto_pad', 'ceil_mode', 'storage_order');
  if ((c.node.output ?? []).slice(1).some((o) => o)) c.fail('the Indices output is not supported');
  const x = c.input(0);
  const w = windowAttrs(c, x, kernelOf(c), c.attrs.int('ceil_mode', 0) === 1);
  // Pad with the lowest float, then the maximum over the kernel's taps, each tap a strided slice.
  const xp = E.pad(
    x,
    [[0, 0], [0, 0], ...w.pads.map(([b, e], i): [number, number] => [b, e + w.extra[i]!])],
    'constant',
    LOWEST,
  );
  let acc: Tensor | null = null;
  const taps = w.kernel.reduce((a, b) => a * b, 1);
  for (let t = 0; t < taps; t++) {
    const r: Record<number, [number, number, number]> = {};
    let rem = t;
    for (let i = w.kernel.length - 1; i >= 0; i--) {
      const o = (rem % w.kernel[i]!) * w.dilations[i];
      rem = Math.floor(rem / w.kernel[i]!);
      r[2 + i] = [o, o + (w.out[i]! - 1) * w.strides[i] + 1, w.strides[i]];
    }
    const tap = E.slice(xp, r);
    acc = acc ? E.maximum(acc, tap) : tap;
  }
  return [acc!];
}

/** Taps of a window that count towards an average, per output position along one axis. */
function tapCounts(
  inp: number,
  out: number,
  k: number,
  s: number,
  d: number,
  pb: number,
  pe: number,
  includePad: boolean,
): number[] {
  return range(out).map((j) => {
    let n = 0;
    for (let t = 0; t < k; t++) {
      const p = j * s - pb + t * d;
      if (includePad ? p < inp + pe : p >= 0 && p < inp) n++;
    }
    return n;
  });
}

function averagePool(c: NodeCtx): Tensor[] {
  c.attrs.only('kernel_shape', 'strides', 'dilations', 'pads', 'auto_pad', 'ceil_mode', 'count_include_pad');
  const x = c.input(0);
  const w = windowAttrs(c, x, kernelOf(c), c.attrs.int('ceil_mode', 0) === 1);
  const includePad = c.attrs.int('count_include_pad', 0) === 1;
  const ch = x.shape[1]!;
  // Window sums as a depthwise convolution with a ones kernel, divided by each window's count.
  const ones = E.ones([ch, 1, ...w.kernel], x.dtype);
  const sum = E.conv(x, ones, null, {
    stride: w.strides,
    dilation: w.dilations,
    padding: w.pads.map(([b, e], i): [number, number] => [b, e + w.extra[i]!]),
    groups: ch,
  });
  const counts = w.kernel.map((k, i) =>
    tapCounts(spatial(x)[i]!, w.out[i]!, k, w.strides[i], w.dilations[i], w.pads[i]![0], w.pads[i]![1], includePad),
  );
  const div = new Float32Array(numel(w.out));
  div.forEach((_, flat) => {
    let rem = flat,
      n = 1;
    for (let i = w.out.length - 1; i >= 0; i--) {
      n *= counts[i]![rem % w.out[i]!]!;
      rem = Math.floor(rem / w.out[i]!);
    }
    div[flat] = 1 / n;
  });
  return [E.mul(sum, concrete(div, [1, 1, ...w.out], 'float32'))];
}

function conv(c: NodeCtx): Tensor[] {
  c.attrs.only('kernel_shape', 'strides', 'dilations', 'pads', 'auto_pad', 'group');
  const x = c.input(0),
    wt = c.input(1),
    b = c.inputs[2];
  const kernel = c.attrs.ints('kernel_shape') ?? wt.shape.slice(2);
  if (kernel.join() !== wt.shape.slice(2).join())
    c.fail(`kernel_shape [${kernel}] does not match the weight ${wt.describe()}`);
  const w = windowAttrs(c, x, kernel);
  return [
    E.conv(x, wt, b ?? null, {
      stride: w.strides,
      dilation: w.dilations,
      padding: w.pads,
      groups: c.attrs.int('group', 1),
    }),
  ];
}

function convTranspose(c: NodeCtx): Tensor[] {
  c.attrs.only('kernel_shape', 'strides', 'dilations', 'pads', 'auto_pad', 'group', 'output_padding');
  if (c.attrs.string('auto_pad', 'NOTSET') !== 'NOTSET') c.fail('auto_pad is not supported (give explicit pads)');
  const x = c.input(0),
    wt = c.input(1),
    b = c.inputs[2];
  const k = wt.rank - 2;
  const p = c.attrs.ints('pads') ?? Array(2 * k).fill(0);
  if (p.length !== 2 * k) c.fail(`pads needs ${2 * k} entries`);
  return [
    E.convTranspose(x, wt, b ?? null, {
      stride: c.attrs.ints('strides') ?? 1,
      dilation: c.attrs.ints('dilations') ?? 1,
      groups: c.attrs.int('group', 1),
      padding: range(k).map((i): [number, number] => [p[i], p[i + k]]),
      outputPadding: c.attrs.ints('output_padding') ?? 0,
    }),
  ];
}

function batchNorm(c: NodeCtx): Tensor[] {
  c.attrs.only('epsilon', 'momentum', 'spatial', 'training_mode', 'is_test', 'consumed_inputs');
  if (c.attrs.int('training_mode', 0) !== 0) c.fail('training_mode=1 is not supported (inference only)');
  if (c.attrs.int('spatial', 1) !== 1) c.fail('spatial=0 is not supported');
  if ((c.node.output ?? []).slice(1).some((o) => o)) c.fail('only the first output (inference) is supported');
  const x = c.input(0);
  const shape = [x.shape[1]!, ...spatial(x).map(() => 1)];
  const eps = c.attrs.float('epsilon', 1e-5);
  const params = [1, 2, 3, 4].map((i) => c.input(i));
  // y = x·a + b with a = scale/√(var+ε), b = bias − mean·a (folded to constants when the statistics are constants).
  const [a, b] = foldable(params, () => {
    const [scale, bias, mean, variance] = params.map((t) => E.reshape(t, shape));
    const a = E.mul(scale!, E.rsqrt(E.add(variance!, eps)));
    return [a, E.sub(bias!, E.mul(mean!, a))];
  });
  return [E.add(E.mul(x, a), b)];
}

function gemm(c: NodeCtx): Tensor[] {
  c.attrs.only('alpha', 'beta', 'transA', 'transB', 'broadcast');
  let a = c.input(0),
    b = c.input(1);
  if (a.rank !== 2 || b.rank !== 2) c.fail(`A and B must be matrices, got ${a.describe()} and ${b.describe()}`);
  if (c.attrs.int('transA', 0)) a = E.transpose(a);
  if (c.attrs.int('transB', 0)) b = E.transpose(b);
  const alpha = c.attrs.float('alpha', 1),
    beta = c.attrs.float('beta', 1);
  let y = E.matmul(a, b);
  if (alpha !== 1) y = E.mul(y, alpha);
  const bias = c.inputs[2];
  if (bias && beta !== 0) y = E.add(y, beta === 1 ? bias : E.mul(bias, beta));
  return [y];
}

/** numpy matmul: 1-D operands gain a unit axis that is dropped again afterwards. */
function matmul(c: NodeCtx): Tensor[] {
  let a = c.input(0),
    b = c.input(1);
  const va = a.rank === 1,
    vb = b.rank === 1;
  if (va) a = E.reshape(a, [1, a.shape[0]!]);
  if (vb) b = E.reshape(b, [b.shape[0]!, 1]);
  let y = E.matmul(a, b);
  if (vb) y = E.squeeze(y, -1);
  if (va) y = E.squeeze(y, vb ? -1 : -2);
  return [y];
}

function reshape(c: NodeCtx): Tensor[] {
  c.attrs.only('allowzero');
  const x = c.input(0);
  const shape = c.ints(1);
  if (!shape) c.fail('the shape input is required');
  const allowZero = c.attrs.int('allowzero', 0) === 1;
  return [
    E.reshape(
      x,
      shape.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d)),
    ),
  ];
}

/** Axes from the attribute (older opsets) or the second input (newer ones). */
function axesOf(c: NodeCtx, inputFrom: number, index = 1): number[] | undefined {
  return c.opset >= inputFrom ? c.ints(index) : c.attrs.ints('axes');
}

function reduce(kind: 'mean' | 'sum' | 'max' | 'min' | 'l2' | 'sumsquare' | 'l1', inputFrom: number): Mapping {
  return (c) => {
    c.attrs.only('axes', 'keepdims', 'noop_with_empty_axes');
    const x = c.input(0);
    const keep = c.attrs.int('keepdims', 1) === 1;
    let axes = axesOf(c, inputFrom);
    if (!axes || axes.length === 0) {
      if (c.attrs.int('noop_with_empty_axes', 0) === 1) return [x];
      axes = range(x.rank);
    }
    const ax = axes.map((a) => norm(a, x.rank, c));
    switch (kind) {
      case 'mean':
        return [E.mean(x, ax, keep)];
      case 'sum':
        return [E.sum(x, ax, keep)];
      case 'max':
        return [E.max(x, ax, keep)];
      case 'min':
        return [E.min(x, ax, keep)];
      case 'sumsquare':
        return [E.sum(E.square(x), ax, keep)];
      case 'l1':
        return [E.sum(E.abs(x), ax, keep)];
      case 'l2':
        return [E.sqrt(E.sum(E.square(x), ax, keep))];
    }
  };
}

function pad(c: NodeCtx): Tensor[] {
  c.attrs.only('mode', 'pads', 'value');
  let x = c.input(0);
  const mode = c.attrs.string('mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge')
    c.fail(`mode "${mode}" is not supported (constant, reflect, edge)`);
  const flat = c.opset >= 11 ? c.ints(1) : c.attrs.ints('pads');
  if (!flat) c.fail('pads are required');
  const value = c.opset >= 11 ? (c.floats(2)?.[0] ?? 0) : c.attrs.float('value', 0);
  const axes = (c.opset >= 18 ? c.ints(3) : undefined)?.map((a) => norm(a, x.rank, c)) ?? range(x.rank);
  if (flat.length !== 2 * axes.length) c.fail(`pads has ${flat.length} entries for ${axes.length} axes`);
  const pairs: [number, number][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, i) => {
    pairs[a] = [flat[i]!, flat[i + axes.length]!];
  });
  // Negative pads crop.
  const crop: Record<number, [number, number]> = {};
  pairs.forEach(([b, e], a) => {
    if (b < 0 || e < 0) crop[a] = [Math.max(0, -b), x.shape[a]! - Math.max(0, -e)];
  });
  if (Object.keys(crop).length) x = E.slice(x, crop);
  return [
    E.pad(
      x,
      pairs.map(([b, e]) => [Math.max(0, b), Math.max(0, e)]),
      mode,
      value,
    ),
  ];
}

function slice(c: NodeCtx): Tensor[] {
  const x = c.input(0);
  let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
  if (c.opset >= 10) {
    c.attrs.only();
    [starts, ends, axes, steps] = [c.ints(1), c.ints(2), c.ints(3), c.ints(4)];
  } else {
    c.attrs.only('starts', 'ends', 'axes');
    [starts, ends, axes] = [c.attrs.ints('starts'), c.attrs.ints('ends'), c.attrs.ints('axes')];
  }
  if (!starts || !ends || starts.length !== ends.length)
    c.fail('starts and ends are required and must have the same length');
  const ax = (axes ?? range(starts.length)).map((a) => norm(a, x.rank, c));
  const st = steps ?? Array(starts.length).fill(1);
  if (ax.length !== starts.length || st.length !== starts.length) c.fail('axes and steps must match starts');
  const r: Record<number, [number, number, number]> = {};
  ax.forEach((a, i) => {
    if (st[i] === 0) c.fail('a slice step of 0');
    r[a] = [starts![i]!, ends![i]!, st[i]];
  });
  return [E.slice(x, r)];
}

function squeeze(c: NodeCtx): Tensor[] {
  c.attrs.only('axes');
  const x = c.input(0);
  const axes = axesOf(c, 13);
  return [
    E.squeeze(
      x,
      axes?.map((a) => norm(a, x.rank, c)),
    ),
  ];
}

function unsqueeze(c: NodeCtx): Tensor[] {
  c.attrs.only('axes');
  const x = c.input(0);
  const axes = axesOf(c, 13);
  if (!axes) c.fail('axes are required');
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => norm(a, rank, c)).sort((p, q) => p - q);
  const shape = [...x.shape];
  for (const a of ax) shape.splice(a, 0, 1);
  return [E.reshape(x, shape)];
}

/** Softmax/LogSoftmax: one axis from opset 13; before it, over the 2-D flattening at `axis` (default 1). */
function softmaxLike(fn: (x: Tensor, axis: number) => Tensor): Mapping {
  return (c) => {
    c.attrs.only('axis');
    const x = c.input(0);
    if (c.opset >= 13) return [fn(x, norm(c.attrs.int('axis', -1), x.rank, c))];
    const axis = norm(c.attrs.int('axis', 1), x.rank, c);
    const flat = E.reshape(x, [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))]);
    return [E.reshape(fn(flat, 1), x.shape)];
  };
}

function clip(c: NodeCtx): Tensor[] {
  let x = c.input(0);
  if (c.opset < 11) {
    c.attrs.only('min', 'max');
    const lo = c.attrs.float('min', -Infinity),
      hi = c.attrs.float('max', Infinity);
    return [E.clamp(x, Number.isFinite(lo) ? lo : undefined, Number.isFinite(hi) ? hi : undefined)];
  }
  c.attrs.only();
  const bound = (i: number) => c.inputs[i];
  const lo = bound(1),
    hi = bound(2);
  if ((!lo || lo.isConcrete) && (!hi || hi.isConcrete)) {
    return [E.clamp(x, lo ? E.item(lo) : undefined, hi ? E.item(hi) : undefined)];
  }
  if (lo) x = E.maximum(x, lo);
  if (hi) x = E.minimum(x, hi);
  return [x];
}

function constant(c: NodeCtx): Tensor[] {
  const a = c.attrs;
  const what = `node ${nodeLabel(c.node)}`;
  if (a.has('value')) return [tensorFromProto(a.tensor('value')!, `${what} value`, c.file, c.baseDir)];
  if (a.has('value_float')) return [E.scalar(a.float('value_float', 0))];
  if (a.has('value_floats')) return [E.tensor(a.floats('value_floats')!)];
  if (a.has('value_int')) return [E.scalar(a.int('value_int', 0), 'int64')];
  if (a.has('value_ints')) return [E.tensor(a.ints('value_ints')!, undefined, 'int64')];
  return c.fail('only value, value_float(s) and value_int(s) constants are supported');
}

function constantOfShape(c: NodeCtx): Tensor[] {
  const shape = c.ints(0) ?? [];
  const t = c.attrs.tensor('value');
  const v = t ? tensorFromProto(t, `node ${nodeLabel(c.node)} value`, c.file, c.baseDir) : E.scalar(0);
  return [E.full(shape, E.toArray(v)[0]!, v.dtype)];
}

function cast(c: NodeCtx): Tensor[] {
  c.attrs.only('to', 'saturate');
  return [E.cast(c.input(0), typeOf(c.attrs.int('to', 1), `node ${nodeLabel(c.node)} (Cast) target`, c.file).dtype)];
}

function gather(c: NodeCtx): Tensor[] {
  c.attrs.only('axis');
  const x = c.input(0);
  let idx = c.input(1);
  const axis = norm(c.attrs.int('axis', 0), x.rank, c);
  if (idx.isConcrete) {
    const v = E.toArray(idx).map((i) => {
      if (i < -x.shape[axis]! || i >= x.shape[axis]!)
        c.fail(`index ${i} is out of range for axis ${axis} of size ${x.shape[axis]}`);
      return i < 0 ? i + x.shape[axis]! : i;
    });
    idx = E.tensor(v, idx.shape, 'int64');
  }
  return [E.gather(x, idx, axis)];
}

function split(c: NodeCtx): Tensor[] {
  c.attrs.only('axis', 'split', 'num_outputs');
  const x = c.input(0);
  const axis = norm(c.attrs.int('axis', 0), x.rank, c);
  const n = (c.node.output ?? []).length;
  let sizes = c.opset >= 13 ? c.ints(1) : c.attrs.ints('split');
  if (!sizes) {
    const dim = x.shape[axis]!,
      chunk = Math.ceil(dim / n);
    sizes = range(n).map((i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
  }
  if (sizes.length !== n) c.fail(`${sizes.length} split sizes for ${n} outputs`);
  return E.split(x, sizes, axis);
}

function shape(c: NodeCtx): Tensor[] {
  c.attrs.only('start', 'end');
  const x = c.input(0);
  const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + x.rank : a, 0), x.rank);
  const s = x.shape.slice(clampAxis(c.attrs.int('start', 0)), clampAxis(c.attrs.int('end', x.rank)));
  return [E.tensor(s, [s.length], 'int64')];
}

function expand(c: NodeCtx): Tensor[] {
  const x = c.input(0),
    target = c.ints(1);
  if (!target) c.fail('the shape input is required');
  const n = Math.max(x.rank, target.length);
  const a = [...Array(n - x.rank).fill(1), ...x.shape],
    b = [...Array(n - target.length).fill(1), ...target];
  const out = a.map((d, i) => {
    if (d !== b[i] && d !== 1 && b[i] !== 1) c.fail(`cannot expand ${x.describe()} to [${target}]`);
    return d === 1 ? b[i] : d;
  });
  return [E.broadcastTo(E.reshape(x, a), out)];
}

function flatten(c: NodeCtx): Tensor[] {
  c.attrs.only('axis');
  const x = c.input(0);
  const a = c.attrs.int('axis', 1);
  const axis = a < 0 ? a + x.rank : a;
  if (axis < 0 || axis > x.rank) c.fail(`axis ${a} is out of range for rank ${x.rank}`);
  return [E.reshape(x, [numel(x.shape.slice(0, axis)), numel(x.shape.slice(axis))])];
}

function transpose(c: NodeCtx): Tensor[] {
  c.attrs.only('perm');
  const x = c.input(0);
  const perm = c.attrs.ints('perm') ?? range(x.rank).reverse();
  if (perm.length !== x.rank) c.fail(`perm [${perm}] does not fit rank ${x.rank}`);
  return [E.transpose(x, perm)];
}

function concat(c: NodeCtx): Tensor[] {
  c.attrs.only('axis');
  const xs = c.inputs.filter((t): t is Tensor => !!t);
  return [E.concat(xs, norm(c.attrs.int('axis', 0), xs[0]!.rank, c))];
}

/** Variadic Sum/Mean/Max/Min. */
function variadic(f: (a: Tensor, b: Tensor) => Tensor, mean = false): Mapping {
  return (c) => {
    c.attrs.only();
    const xs = c.inputs.filter((t): t is Tensor => !!t);
    const y = xs.slice(1).reduce(f, xs[0]!);
    return [mean ? E.div(y, xs.length) : y];
  };
}

function binary(f: (a: Tensor, b: Tensor) => Tensor): Mapping {
  return (c) => {
    c.attrs.only();
    return [f(c.input(0), c.input(1))];
  };
}

function unary(f: (x: Tensor) => Tensor, ...attrs: string[]): Mapping {
  return (c) => {
    c.attrs.only(...attrs);
    return [f(c.input(0))];
  };
}

function pow(c: NodeCtx): Tensor[] {
  c.attrs.only();
  const x = c.input(0),
    e = c.input(1);
  if (e.isConcrete && e.size === 1) {
    const v = E.item(e);
    const shapeOf = (y: Tensor) =>
      e.rank > x.rank ? E.reshape(y, [...Array(e.rank - x.rank).fill(1), ...x.shape]) : y;
    if (v === 1) return [shapeOf(x)];
    if (v === 2) return [shapeOf(E.square(x))];
    if (v === 0.5) return [shapeOf(E.sqrt(x))];
    return [E.pow(x, E.reshape(lift(v, x.dtype), e.shape))];
  }
  return [E.pow(x, e.dtype === x.dtype ? e : E.cast(e, x.dtype))];
}

function dropout(c: NodeCtx): Tensor[] {
  c.attrs.only('ratio', 'seed', 'is_test');
  if ((c.node.output ?? []).slice(1).some((o) => o)) c.fail('the mask output is not supported');
  const training = c.inputs[2];
  if (training && (!training.isConcrete || E.item(training) !== 0)) c.fail('training_mode must be a constant false');
  return [c.input(0)];
}

export const MAPPINGS: Record<string, Mapping> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: unary((x) => E.mean(x, range(x.rank - 2, 2), true)),
  GlobalMaxPool: unary((x) => E.max(x, range(x.rank - 2, 2), true)),
  BatchNormalization: batchNorm,
  Gemm: gemm,
  MatMul: matmul,
  Relu: unary((x) => E.relu(x)),
  LeakyRelu: (c) => {
    c.attrs.only('alpha');
    const x = c.input(0),
      a = c.attrs.float('alpha', 0.01);
    return [E.where(E.greater(x, 0), x, E.mul(x, a))];
  },
  PRelu: binary((x, s) => E.where(E.greater(x, 0), x, E.mul(x, s))),
  Elu: (c) => {
    c.attrs.only('alpha');
    const x = c.input(0),
      a = c.attrs.float('alpha', 1);
    // exp of the negative part only, so positive inputs cannot overflow
    return [E.where(E.greater(x, 0), x, E.mul(E.sub(E.exp(E.minimum(x, 0)), 1), a))];
  },
  HardSigmoid: (c) => {
    c.attrs.only('alpha', 'beta');
    return [E.clamp(E.add(E.mul(c.input(0), c.attrs.float('alpha', 0.2)), c.attrs.float('beta', 0.5)), 0, 1)];
  },
  HardSwish: unary((x) => E.mul(x, E.clamp(E.add(E.mul(x, 1 / 6), 0.5), 0, 1))),
  Sigmoid: unary((x) => E.sigmoid(x)),
  Tanh: unary((x) => E.tanh(x)),
  Softplus: unary((x) => E.softplus(x)),
  Gelu: (c) => {
    c.attrs.only('approximate');
    const a = c.attrs.string('approximate', 'none');
    if (a !== 'none' && a !== 'tanh') c.fail(`approximate "${a}"`);
    return [E.gelu(c.input(0), a as 'none' | 'tanh')];
  },
  Erf: unary((x) => E.erf(x)),
  Exp: unary((x) => E.exp(x)),
  Log: unary((x) => E.log(x)),
  Neg: unary((x) => E.neg(x)),
  Abs: unary((x) => E.abs(x)),
  Sqrt: unary((x) => E.sqrt(x)),
  Reciprocal: unary((x) => E.reciprocal(x)),
  Pow: pow,
  Add: binary((a, b) => E.add(a, b)),
  Sub: binary((a, b) => E.sub(a, b)),
  Mul: binary((a, b) => E.mul(a, b)),
  Div: binary((a, b) => E.div(a, b)),
  Sum: variadic((a, b) => E.add(a, b)),
  Mean: variadic((a, b) => E.add(a, b), true),
  Max: variadic((a, b) => E.maximum(a, b)),
  Min: variadic((a, b) => E.minimum(a, b)),
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Slice: slice,
  Pad: pad,
  Expand: expand,
  Gather: gather,
  Shape: shape,
  Cast: cast,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Identity: unary((x) => x),
  Dropout: dropout,
  Clip: clip,
  ReduceMean: reduce('mean', 18),
  ReduceSum: reduce('sum', 13),
  ReduceMax: reduce('max', 18),
  ReduceMin: reduce('min', 18),
  ReduceL1: reduce('l1', 18),
  ReduceL2: reduce('l2', 18),
  ReduceSumSquare: reduce('sumsquare', 18),
  Softmax: softmaxLike((x, a) => E.softmax(x, a)),
  LogSoftmax: softmaxLike((x, a) => E.logSoftmax(x, a)),
};

/** The op types the importer maps (for messages and documentation). */
export const SUPPORTED_OPS: readonly string[] = Object.keys(MAPPINGS).sort();

/** Runs `fn` eagerly (outside any trace) when all `inputs` are constants, so the results are constants too. */
export function foldable<T>(inputs: Tensor[], fn: () => T): T {
  return inputs.every((t) => t.isConcrete) ? withGraph(null, fn) : fn();
}

export function nodeLabel(n: INode, index?: number): string {
  return n.name ? `"${n.name}"` : `#${index ?? '?'} (output "${n.output?.[0] ?? ''}")`;
}
