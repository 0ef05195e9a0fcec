import { apply1, defineOp } from '../op.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { zeros } from './creation.js';
import { matmul } from './linalg.js';
import { flip, narrow, pad, reshape, slice, stack, swapAxes, transpose } from './movement.js';
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
interface ConvTAttrs extends ConvAttrs {
  outputPadding: number[];
}

const pairsToOnnx = (p: [number, number][]) => [...p.map((x) => x[0]), ...p.map((x) => x[1])];

function convOutSize(inp: number, k: number, a: ConvAttrs, i: number): number {
  return Math.floor((inp + a.padding[i]![0] + a.padding[i]![1] - a.dilation[i]! * (k - 1) - 1) / a.stride[i]!) + 1;
}

function convTOutSize(inp: number, k: number, a: ConvTAttrs, i: number): number {
  return (
    a.stride[i]! * (inp - 1) + a.outputPadding[i]! + a.dilation[i]! * (k - 1) + 1 - a.padding[i]![0] - a.padding[i]![1]
  );
}

function biasGrad(g: Tensor): Tensor {
  return sum(g, [0, ...g.shape.slice(2).map((_, i) => i + 2)]);
}

/** dL/dw of y = conv(x, w) given g = dL/dy, as one grouped convolution over transposed tensors (the fallback). */
function convWeightGradGrouped(x: Tensor, g: Tensor, kernel: readonly number[], a: ConvAttrs): Tensor {
  const [n, cin, ...sx] = x.shape as [number, number, ...number[]];
  const [, cout, ...sg] = g.shape as [number, number, ...number[]];
  const G = a.groups,
    cinG = cin / G,
    coutG = cout / G;
  // x' = [cin_g, G·N, S]: each group's input channels become the batch, (group, sample) the channels.
  const xT = reshape(transpose(reshape(x, [n, G, cinG, ...sx]), [2, 1, 0, ...sx.map((_, i) => 3 + i)]), [
    cinG,
    G * n,
    ...sx,
  ]);
  // g' = [G·cout_g, N, S']: the output gradient is the kernel.
  const gT = reshape(transpose(reshape(g, [n, G, coutG, ...sg]), [1, 2, 0, ...sg.map((_, i) => 3 + i)]), [
    G * coutG,
    n,
    ...sg,
  ]);
  let dw = conv(xT, gT, null, { stride: a.dilation, dilation: a.stride, padding: a.padding, groups: G });
  // The correlation can run past the kernel extent; keep the first k positions per axis.
  kernel.forEach((k, i) => {
    if (dw.shape[2 + i] !== k) dw = narrow(dw, 2 + i, 0, k);
  });
  return transpose(dw, [1, 0, ...kernel.map((_, i) => 2 + i)]);
}

/** Largest im2col buffer (values) the weight gradient may build; bigger cases use the grouped-conv form. */
const IM2COL_LIMIT = 1 << 28;

/**
 * dL/dw of y = conv(x, w) given g = dL/dy, by im2col and matrix products: dw[o, c, k] = Σ_p g[o, p]·xpad[c, s·p + d·k].
 * Stride 1 uses a flat "padded grid": output positions are laid out with the padded input's strides (the
 * extra columns of g are zero), so every tap is one contiguous range of the flattened padded input, cut by a
 * cheap slice; each tap then gives dw[:, :, k] = g · tapᵀ, one GEMM. Strided convolutions take strided slices,
 * stacked into cols = [N, G, Cin/G·K, P] for one GEMM. ORT runs either as copies plus GEMMs, where the
 * equivalent grouped convolution with the output gradient as a giant kernel is several times slower.
 */
function convWeightGrad(x: Tensor, g: Tensor, kernel: readonly number[], a: ConvAttrs): Tensor {
  const [n, cin] = x.shape as [number, number];
  const [, cout, ...so] = g.shape as [number, number, ...number[]];
  const d = kernel.length;
  const K = kernel.reduce((p, k) => p * k, 1);
  const P = so.reduce((p, k) => p * k, 1);
  const G = a.groups,
    cinG = cin / G,
    coutG = cout / G;
  const xp = pad(x, [[0, 0], [0, 0], ...a.padding]);
  const sp = xp.shape.slice(2);
  const taps = (fn: (k: number[]) => Tensor): Tensor[] => {
    const out: Tensor[] = [];
    const visit = (axis: number, k: number[]) => {
      if (axis === d) out.push(fn(k));
      else for (let i = 0; i < kernel[axis]!; i++) visit(axis + 1, [...k, i]);
    };
    visit(0, []);
    return out;
  };
  if (a.stride.every((s) => s === 1)) {
    // Flat padded grid: position p' = Σ p_i·st_i (st = strides of the padded input), p_i < So_i on the first
    // axis and < Sp_i on the others; g is zero on the extra columns. A tap k reads xflat[p' + Σ d_i·k_i·st_i].
    // The first axis's taps shift g instead (zero frames in front/behind), the others' taps cut contiguous
    // ranges of xflat: dw[kt, o | c, k'] = Σ_q g_kt[o, q]·cols_k'[c, q], one GEMM of (Cout·K0) × (Cin·K/K0).
    const st = sp.map((_, i) => sp.slice(i + 1).reduce((q, v) => q * v, 1));
    const L = sp[0]! * st[0]!;
    const k0 = kernel[0]!,
      kr = K / k0;
    // The grid's extra columns are wasted work; small maps (where they are many) take the strided path below.
    const waste = L / (P * (1 + (a.dilation[0]! * (k0 - 1)) / so[0]!));
    if (n * Math.max(k0 * cout, kr * cin) * L <= IM2COL_LIMIT && waste < 1.5) {
      const tail = kernel.reduce((e, k, i) => (i > 0 ? e + a.dilation[i]! * (k - 1) * st[i]! : e), 0);
      const xf = pad(reshape(xp, [n, G, cinG, L]), [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, tail],
      ]);
      const offs: number[] = [];
      const visit = (axis: number, off: number) => {
        if (axis === d) offs.push(off);
        else for (let i = 0; i < kernel[axis]!; i++) visit(axis + 1, off + a.dilation[axis]! * i * st[axis]!);
      };
      visit(1, 0);
      // g on the padded grid of the other axes, then shifted along the first axis by d_0·kt frames.
      const gg = pad(g, [[0, 0], [0, 0], [0, 0], ...so.slice(1).map((o, i): [number, number] => [0, sp[i + 1]! - o])]);
      const span = a.dilation[0]! * (k0 - 1);
      const shifted = Array.from({ length: k0 }, (_, kt) =>
        pad(gg, [
          [0, 0],
          [0, 0],
          [a.dilation[0]! * kt, span - a.dilation[0]! * kt],
          ...so.slice(1).map((): [number, number] => [0, 0]),
        ]),
      );
      const gs = reshape(k0 === 1 ? shifted[0]! : stack(shifted, 2), [n, G, coutG * k0, L]); // [N, G, Cout/G·K0, L]
      // One GEMM per tap of the other axes, each reading its own slice of xflat: stacking the slices into one
      // im2col matrix first would copy the input twice (Slice, then Concat).
      // K' × [N, G, Cin/G, L]
      const perTap = offs.length === 1 && tail === 0 ? [xf] : offs.map((o) => narrow(xf, 3, o, L));
      const prods = perTap.map((col) => matmul(gs, swapAxes(col))); // K' × [N, G, Cout/G·K0, Cin/G]
      // [N, G, Cout/G·K0, Cin/G·K']
      let dw = reshape(prods.length === 1 ? prods[0]! : stack(prods, 4), [n, G, coutG * k0, cinG * kr]);
      if (n > 1) dw = sum(dw, [0]);
      dw = transpose(reshape(dw, [G, coutG, k0, cinG, kr]), [0, 1, 3, 2, 4]);
      return reshape(dw, [cout, cinG, ...kernel]);
    }
  }
  if (n * cin * K * P > IM2COL_LIMIT) return convWeightGradGrouped(x, g, kernel, a);
  const cols = taps((k) => {
    const r: Record<number, [number, number, number]> = {};
    k.forEach((ki, i) => {
      const start = ki * a.dilation[i]!;
      r[2 + i] = [start, start + a.stride[i]! * (so[i]! - 1) + 1, a.stride[i]!];
    });
    return slice(xp, r);
  });
  // [N, Cin, K, P] → [N, G, Cin/G·K, P]: rows ordered as the weight's (in-channel, tap) layout.
  const g4 = reshape(g, [n, G, coutG, P]);
  let dw = matmul(g4, swapAxes(reshape(stack(cols, 2), [n, G, cinG * K, P]))); // [N, G, Cout/G, Cin/G·K]
  if (n > 1) dw = sum(dw, [0]);
  return reshape(dw, [cout, cinG, ...kernel]);
}

/** The weight for computing dL/dx as a convolution of g: in/out channels swapped per group, kernel flipped. */
function transposedWeight(w: Tensor, G: number): Tensor {
  const [cout, cinG, ...k] = w.shape as [number, number, ...number[]];
  const sp = k.map((_, i) => 3 + i);
  const wt = reshape(transpose(reshape(w, [G, cout / G, cinG, ...k]), [0, 2, 1, ...sp]), [G * cinG, cout / G, ...k]);
  return flip(
    wt,
    k.map((_, i) => 2 + i),
  );
}

/**
 * dL/dx of y = conv(x, w) as ordinary convolutions of g (ORT's ConvTranspose is much slower than its Conv).
 * Stride 1: one conv with the flipped, channel-swapped kernel. Stride s > 1 (dilation 1): the input positions
 * split into s phases per axis; phase r only sees the taps k ≡ r + p (mod s), so each phase is a stride-1 conv of
 * g with a sub-kernel, and the phases are interleaved back. Returns null where neither applies.
 */
function convInputGrad(g: Tensor, w: Tensor, xShape: readonly number[], a: ConvAttrs): Tensor | null {
  const kernel = w.shape.slice(2);
  const d = kernel.length;
  const spatial = xShape.slice(2);
  const G = a.groups;
  if (a.stride.every((s) => s === 1)) {
    const padding = kernel.map((k, i): [number, number] => [
      a.dilation[i]! * (k - 1) - a.padding[i]![0],
      a.dilation[i]! * (k - 1) - a.padding[i]![1],
    ]);
    if (padding.some(([b, e]) => b < 0 || e < 0)) return null;
    return conv(g, transposedWeight(w, G), null, { stride: a.stride, dilation: a.dilation, padding, groups: G });
  }
  if (a.dilation.some((v) => v !== 1)) return null;
  const [n] = g.shape as [number];
  const cin = xShape[1]!;
  const gs = g.shape.slice(2);
  const S = a.stride;
  const M = spatial.map((L, i) => Math.ceil(L / S[i]!));
  const phases: Tensor[] = [];
  const visit = (axis: number, res: number[]) => {
    if (axis < d) {
      for (let r = 0; r < S[axis]!; r++) visit(axis + 1, [...res, r]);
      return;
    }
    // Per axis: output positions j = S·m + r', padded input position j + p = S·(m + c) + r.
    const count = res.map((rp, i) => Math.ceil((spatial[i]! - rp) / S[i]!));
    if (count.some((c) => c <= 0)) return phases.push(zeros([n, cin, ...M], g.dtype));
    const sub: Record<number, [number, number, number]> = {};
    const gRange: Record<number, [number, number]> = {};
    const padding: [number, number][] = [];
    let empty = false;
    res.forEach((rp, i) => {
      const r = (rp + a.padding[i]![0]) % S[i]!;
      const c = Math.floor((rp + a.padding[i]![0]) / S[i]!);
      const Q = Math.ceil((kernel[i]! - r) / S[i]!);
      if (Q <= 0) empty = true;
      sub[2 + i] = [r, kernel[i]!, S[i]!];
      const F = Q - 1 - c;
      const B = count[i]! + Q - 1 - gs[i]! - F;
      gRange[2 + i] = [Math.max(0, -F), gs[i]! - Math.max(0, -B)];
      padding.push([Math.max(0, F), Math.max(0, B)]);
    });
    let ph: Tensor;
    if (empty || Object.values(gRange).some(([s0, e0]) => e0 <= s0)) ph = zeros([n, cin, ...count], g.dtype);
    else
      ph = conv(slice(g, gRange), transposedWeight(slice(w, sub), G), null, {
        stride: S.map(() => 1),
        dilation: S.map(() => 1),
        padding,
        groups: G,
      });
    // Pad every phase to ceil(L/S) positions per axis so they stack.
    phases.push(pad(ph, [[0, 0], [0, 0], ...count.map((c, i): [number, number] => [0, M[i]! - c])]));
  };
  visit(0, []);
  // [S_0, …, S_{d−1}, N, C, M_0, …] → [N, C, M_0, S_0, M_1, S_1, …] → [N, C, M_0·S_0, …], cut to the input size.
  const stacked = reshape(stack(phases, 0), [...S, n, cin, ...M]);
  const perm = [d, d + 1, ...M.flatMap((_, i) => [d + 2 + i, i])];
  let dx = reshape(transpose(stacked, perm), [n, cin, ...M.map((m, i) => m * S[i]!)]);
  spatial.forEach((L, i) => {
    if (dx.shape[2 + i] !== L) dx = narrow(dx, 2 + i, 0, L);
  });
  return dx;
}

const convOp = defineOp<ConvAttrs>({
  name: 'conv',
  infer([x, w, b], a) {
    const k = w.shape.slice(2);
    if (x.shape.length !== w.shape.length || k.length !== a.stride.length)
      throw new Error(`input ${fmt(x.shape)} and weight ${fmt(w.shape)} ranks do not fit`);
    if (x.shape[1] !== w.shape[1]! * a.groups)
      throw new Error(`input has ${x.shape[1]} channels, weight expects ${w.shape[1]}×${a.groups} groups`);
    if (w.shape[0]! % a.groups !== 0)
      throw new Error(`${w.shape[0]} output channels not divisible by ${a.groups} groups`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0]))
      throw new Error(`bias ${fmt(b.shape)} must be [${w.shape[0]}]`);
    const out = k.map((kk, i) => convOutSize(x.shape[2 + i]!, kk, a, i));
    if (out.some((o) => o <= 0)) throw new Error(`output size ${fmt(out)} is empty`);
    return [{ shape: [x.shape[0]!, w.shape[0]!, ...out], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, a, node) {
    ctx.emit('Conv', ins, outs, {
      kernel_shape: node.inputs[1].shape.slice(2),
      strides: a.stride,
      dilations: a.dilation,
      pads: pairsToOnnx(a.padding),
      group: a.groups,
    });
  },
  vjp([g], { inputs: [x, w, b], attrs: a }, needs) {
    const k = w.shape.slice(2);
    let dx: Tensor | null = null;
    if (needs[0]) {
      // output_padding recovers the input positions a strided conv never reached.
      dx = convInputGrad(g!, w, x.shape, a);
      if (!dx) {
        // output_padding recovers the input positions a strided conv never reached.
        const outputPadding = k.map(
          (kk, i) =>
            x.shape[2 + i]! -
            ((g!.shape[2 + i]! - 1) * a.stride[i]! +
              a.dilation[i]! * (kk - 1) +
              1 -
              a.padding[i]![0] -
              a.padding[i]![1]),
        );
        dx = convTranspose(g!, w, null, { ...a, outputPadding });
      }
    }
    return [dx, needs[1] ? convWeightGrad(x, g!, k, a) : null, b && needs[2] ? biasGrad(g!) : null];
  },
});

const convTOp = defineOp<ConvTAttrs>({
  name: 'convTranspose',
  infer([x, w, b], a) {
    const k = w.shape.slice(2);
    if (x.shape.length !== w.shape.length || k.length !== a.stride.length)
      throw new Error(`input ${fmt(x.shape)} and weight ${fmt(w.shape)} ranks do not fit`);
    if (x.shape[1] !== w.shape[0]) throw new Error(`input has ${x.shape[1]} channels, weight expects ${w.shape[0]}`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[1]! * a.groups))
      throw new Error(`bias ${fmt(b.shape)} must be [${w.shape[1]! * a.groups}]`);
    const out = k.map((kk, i) => convTOutSize(x.shape[2 + i]!, kk, a, i));
    return [{ shape: [x.shape[0]!, w.shape[1]! * a.groups, ...out], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, a, node) {
    ctx.emit('ConvTranspose', ins, outs, {
      kernel_shape: node.inputs[1].shape.slice(2),
      strides: a.stride,
      dilations: a.dilation,
      pads: pairsToOnnx(a.padding),
      group: a.groups,
      output_padding: a.outputPadding,
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
  const list = (v: number | number[] | undefined, d: number) =>
    v === undefined ? Array(rank).fill(d) : typeof v === 'number' ? Array(rank).fill(v) : v;
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
  let attrs = normalize(x.rank - 2, opts as ConvOptions);
  // conv(pad(x)) with zero spatial padding → conv(x) with that padding: neither pass computes on the pad (and
  // the unused pad node is dropped when lowering).
  const src = x.source;
  if (src.kind === 'node' && src.node.op.name === 'pad') {
    const pa = src.node.attrs as { pads: [number, number][]; mode: string; value: number };
    if (
      pa.mode === 'constant' &&
      pa.value === 0 &&
      pa.pads[0]![0] + pa.pads[0]![1] + pa.pads[1]![0] + pa.pads[1]![1] === 0
    ) {
      x = src.node.inputs[0];
      attrs = {
        ...attrs,
        padding: attrs.padding.map(([b, e], i): [number, number] => [b + pa.pads[2 + i]![0], e + pa.pads[2 + i]![1]]),
      };
    }
  }
  return apply1(convOp, bias ? [x, w, bias] : [x, w], attrs);
}

/** PyTorch-style transposed convolution: x N×Cin×S, w Cin×(Cout/groups)×K. */
export function convTranspose(
  x: Tensor,
  w: Tensor,
  bias?: Tensor | null,
  opts: ConvOptions & { outputPadding?: number | number[] } = {},
): Tensor {
  const rank = x.rank - 2;
  const op = opts.outputPadding;
  const outputPadding = op === undefined ? Array(rank).fill(0) : typeof op === 'number' ? Array(rank).fill(op) : op;
  return apply1(convTOp, bias ? [x, w, bias] : [x, w], { ...normalize(rank, opts), outputPadding });
}
