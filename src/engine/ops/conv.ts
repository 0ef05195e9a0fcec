import { apply1, defineOp } from '../op.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { narrow, reshape, transpose } from './movement.js';
import { sum } from './reduce.js';

/**
 * Convolution and transposed convolution over 1, 2 or 3 spatial axes (N×C×spatial, PyTorch weight layouts), with
 * stride, per-side padding, dilation and groups. Their gradients are themselves convolutions:
 *   conv:  dx = convTranspose(g, w),  dw = conv of x (channels as batch) with g as the kernel;
 *   convT: dx = conv(g, w),           dw = the same weight gradient with the roles of x and g swapped.
 */
export interface ConvAttrs {
  stride: number[];
  dilation: number[];
  /** [begin, end] per spatial axis. */
  padding: [number, number][];
  groups: number;
}
interface ConvTAttrs extends ConvAttrs { outputPadding: number[] }

const pairsToOnnx = (p: [number, number][]) => [...p.map((x) => x[0]), ...p.map((x) => x[1])];

function convOutSize(inp: number, k: number, a: ConvAttrs, i: number): number {
  return Math.floor((inp + a.padding[i][0] + a.padding[i][1] - a.dilation[i] * (k - 1) - 1) / a.stride[i]) + 1;
}

function convTOutSize(inp: number, k: number, a: ConvTAttrs, i: number): number {
  return a.stride[i] * (inp - 1) + a.outputPadding[i] + a.dilation[i] * (k - 1) + 1 - a.padding[i][0] - a.padding[i][1];
}

function biasGrad(g: Tensor): Tensor {
  return sum(g, [0, ...g.shape.slice(2).map((_, i) => i + 2)]);
}

/** dL/dw of y = conv(x, w) given g = dL/dy, as one grouped convolution over transposed tensors. */
function convWeightGrad(x: Tensor, g: Tensor, kernel: readonly number[], a: ConvAttrs): Tensor {
  const [n, cin, ...sx] = x.shape;
  const [, cout, ...sg] = g.shape;
  const G = a.groups, cinG = cin / G, coutG = cout / G;
  // x' = [cin_g, G·N, S]: each group's input channels become the batch, (group, sample) the channels.
  const xT = reshape(transpose(reshape(x, [n, G, cinG, ...sx]), [2, 1, 0, ...sx.map((_, i) => 3 + i)]), [cinG, G * n, ...sx]);
  // g' = [G·cout_g, N, S']: the output gradient is the kernel.
  const gT = reshape(transpose(reshape(g, [n, G, coutG, ...sg]), [1, 2, 0, ...sg.map((_, i) => 3 + i)]), [G * coutG, n, ...sg]);
  let dw = conv(xT, gT, null, { stride: a.dilation, dilation: a.stride, padding: a.padding, groups: G });
  // The correlation can run past the kernel extent; keep the first k positions per axis.
  kernel.forEach((k, i) => {
    if (dw.shape[2 + i] !== k) dw = narrow(dw, 2 + i, 0, k);
  });
  return transpose(dw, [1, 0, ...kernel.map((_, i) => 2 + i)]);
}

const convOp = defineOp<ConvAttrs>({
  name: 'conv',
  infer([x, w, b], a) {
    const k = w.shape.slice(2);
    if (x.shape.length !== w.shape.length || k.length !== a.stride.length) throw new Error(`input ${fmt(x.shape)} and weight ${fmt(w.shape)} ranks do not fit`);
    if (x.shape[1] !== w.shape[1] * a.groups) throw new Error(`input has ${x.shape[1]} channels, weight expects ${w.shape[1]}×${a.groups} groups`);
    if (w.shape[0] % a.groups !== 0) throw new Error(`${w.shape[0]} output channels not divisible by ${a.groups} groups`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`bias ${fmt(b.shape)} must be [${w.shape[0]}]`);
    const out = k.map((kk, i) => convOutSize(x.shape[2 + i], kk, a, i));
    if (out.some((o) => o <= 0)) throw new Error(`output size ${fmt(out)} is empty`);
    return [{ shape: [x.shape[0], w.shape[0], ...out], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, a, node) {
    ctx.emit('Conv', ins, outs, {
      kernel_shape: node.inputs[1].shape.slice(2), strides: a.stride, dilations: a.dilation, pads: pairsToOnnx(a.padding), group: a.groups,
    });
  },
  vjp([g], { inputs: [x, w, b], attrs: a }, needs) {
    const k = w.shape.slice(2);
    let dx: Tensor | null = null;
    if (needs[0]) {
      // output_padding recovers the input positions a strided conv never reached.
      const outputPadding = k.map((kk, i) => x.shape[2 + i] - ((g!.shape[2 + i] - 1) * a.stride[i] + a.dilation[i] * (kk - 1) + 1 - a.padding[i][0] - a.padding[i][1]));
      dx = convTranspose(g!, w, null, { ...a, outputPadding });
    }
    return [dx, needs[1] ? convWeightGrad(x, g!, k, a) : null, b && needs[2] ? biasGrad(g!) : null];
  },
});

const convTOp = defineOp<ConvTAttrs>({
  name: 'convTranspose',
  infer([x, w, b], a) {
    const k = w.shape.slice(2);
    if (x.shape.length !== w.shape.length || k.length !== a.stride.length) throw new Error(`input ${fmt(x.shape)} and weight ${fmt(w.shape)} ranks do not fit`);
    if (x.shape[1] !== w.shape[0]) throw new Error(`input has ${x.shape[1]} channels, weight expects ${w.shape[0]}`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[1] * a.groups)) throw new Error(`bias ${fmt(b.shape)} must be [${w.shape[1] * a.groups}]`);
    const out = k.map((kk, i) => convTOutSize(x.shape[2 + i], kk, a, i));
    return [{ shape: [x.shape[0], w.shape[1] * a.groups, ...out], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, a, node) {
    ctx.emit('ConvTranspose', ins, outs, {
      kernel_shape: node.inputs[1].shape.slice(2), strides: a.stride, dilations: a.dilation, pads: pairsToOnnx(a.padding),
      group: a.groups, output_padding: a.outputPadding,
    });
  },
  vjp([g], { inputs: [x, w, b], attrs: a }, needs) {
    const base: ConvAttrs = { stride: a.stride, dilation: a.dilation, padding: a.padding, groups: a.groups };
    return [
      needs[0] ? conv(g!, w, null, base) : null,
      needs[1] ? convWeightGrad(g!, x, w.shape.slice(2), base) : null,
      b && needs[2] ? biasGrad(g!) : null,
    ];
  },
});

export interface ConvOptions {
  stride?: number | number[];
  /** Symmetric padding per axis, or [begin, end] pairs per axis. */
  padding?: number | number[] | [number, number][];
  dilation?: number | number[];
  groups?: number;
}

function normalize(rank: number, o: ConvOptions): ConvAttrs {
  const list = (v: number | number[] | undefined, d: number) => (v === undefined ? Array(rank).fill(d) : typeof v === 'number' ? Array(rank).fill(v) : v);
  let padding: [number, number][];
  const p = o.padding ?? 0;
  if (typeof p === 'number') padding = Array.from({ length: rank }, () => [p, p]);
  else if (p.length && Array.isArray(p[0])) padding = p as [number, number][];
  else padding = (p as number[]).map((v) => [v, v]);
  const attrs = { stride: list(o.stride, 1), dilation: list(o.dilation, 1), padding, groups: o.groups ?? 1 };
  if (attrs.stride.length !== rank || attrs.dilation.length !== rank || attrs.padding.length !== rank) {
    throw new Error(`conv options must have ${rank} entries per list`);
  }
  return attrs;
}

/** PyTorch-style convolution: x N×Cin×S, w Cout×(Cin/groups)×K, optional bias [Cout]. */
export function conv(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions | ConvAttrs = {}): Tensor {
  const attrs = normalize(x.rank - 2, opts as ConvOptions);
  return apply1(convOp, bias ? [x, w, bias] : [x, w], attrs);
}

/** PyTorch-style transposed convolution: x N×Cin×S, w Cin×(Cout/groups)×K. */
export function convTranspose(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions & { outputPadding?: number | number[] } = {}): Tensor {
  const rank = x.rank - 2;
  const op = opts.outputPadding;
  const outputPadding = op === undefined ? Array(rank).fill(0) : typeof op === 'number' ? Array(rank).fill(op) : op;
  return apply1(convTOp, bias ? [x, w, bias] : [x, w], { ...normalize(rank, opts), outputPadding });
}
