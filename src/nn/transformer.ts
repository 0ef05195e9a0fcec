import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { LayerNorm, Linear, RMSNorm } from './layers.js';
import { Module } from './module.js';

/**
 * The one transformer block family: every attention in vtok (LARP's ViT blocks and GPTC prior, the GPT, the
 * prefix LM, the built-in text encoder) is a `TransformerBlock` or a `MultiHeadAttention` from this file.
 *
 * - Parameter names are configurable per model (a role → name map whose order is the declaration order), so each
 *   model keeps its reference's names: timm `attn.qkv/attn.proj`, GPTC `attn.key/query/value/proj`, Llama-style
 *   `wq/wk/wv/wo` and `w1/w2/w3`.
 * - Masks are tensors or `E.AttentionMask` values; the builders below make causal, prefix-LM (per-row prefix
 *   lengths as a tensor), key-padding and local-window masks over a t×h×w grid, and `andMasks` combines them.
 * - Positions: rotary tables from a position tensor (so a decode step can feed its position); learned or fixed
 *   position embeddings are added by the model before the blocks.
 * - KV cache: attention takes the keys/values of earlier positions as they are (never concatenated in-graph) and
 *   hands this call's keys/values to a callback, which a decode program returns as outputs.
 */

// ---- masks (true = visible) ----

/** A mask: an `E.AttentionMask` (built at trace time) or a bool tensor broadcastable to [B, H, Tq, Tk]. */
export type Mask = E.AttentionMask;

/** Prefix-LM mask [B, 1, S, S]: query i sees key j iff j < P_b or j ≤ i (`prefixLength` int [B]). */
export function prefixLmMask(prefixLength: Tensor, length: number): Tensor {
  const i = E.reshape(E.arange(0, length, 1, 'int64'), [length, 1]);
  const j = E.reshape(E.arange(0, length, 1, 'int64'), [1, length]);
  const p = E.reshape(E.cast(prefixLength, 'int64'), [prefixLength.shape[0]!, 1, 1, 1]);
  return E.logicalOr(E.less(j, p), E.lessEqual(j, i));
}

/** Key-padding mask [B, 1, 1, S] from `valid` bool [B, S]: invalid keys are hidden from every query. */
export function keyPaddingMask(valid: Tensor): Tensor {
  return E.reshape(valid, [valid.shape[0]!, 1, 1, valid.shape[1]!]);
}

/**
 * Local attention along one axis of a row-major grid (e.g. t×h×w tokens) as a constant [S, S] mask: i sees j iff
 * they share every other coordinate and |i_axis − j_axis| < size (and j_axis ≤ i_axis when causal).
 */
export function windowMask(grid: number[], o: { axis: number; size: number; causal?: boolean }): Tensor {
  const S = grid.reduce((a, b) => a * b, 1);
  if (o.axis < 0 || o.axis >= grid.length)
    throw new Error(`windowMask: axis ${o.axis} outside a ${grid.length}-axis grid`);
  const coords = (n: number) => {
    const c = new Array<number>(grid.length);
    for (let a = grid.length - 1; a >= 0; a--) {
      c[a] = n % grid[a]!;
      n = Math.floor(n / grid[a]!);
    }
    return c;
  };
  const all = Array.from({ length: S }, (_, n) => coords(n));
  const v = new Uint8Array(S * S);
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < S; j++) {
      const ci = all[i]!,
        cj = all[j]!;
      let ok = ci.every((x, a) => a === o.axis || x === cj[a]);
      const d = ci[o.axis]! - cj[o.axis]!;
      ok &&= Math.abs(d) < o.size && (!o.causal || d >= 0);
      v[i * S + j] = ok ? 1 : 0;
    }
  }
  return E.cast(E.tensor(Array.from(v), [S, S], 'uint8'), 'bool');
}

/** Intersection of masks (each a bool tensor or an `E.AttentionMask`) for tq queries over tk keys. */
export function andMasks(masks: Mask[], tq: number, tk: number): Mask {
  const ts = masks.filter((m): m is Exclude<Mask, 'none'> => m !== 'none').map((m) => asBool(m, tq, tk));
  if (ts.length === 0) return 'none';
  return ts.reduce((a, b) => E.logicalAnd(a, b));
}

function asBool(m: Exclude<Mask, 'none'>, tq: number, tk: number): Tensor {
  if (typeof m === 'object' && 'source' in m) return m.dtype === 'bool' ? m : E.greater(m, -1);
  return E.greater(E.maskBias(m, tq, tk), -1);
}

// ---- rotary positions ----

/** cos/sin tables for rotary positions, each [..., S, headDim] (rotate-half convention, whole head dimension). */
export interface Rope {
  cos: Tensor;
  sin: Tensor;
}

/** Rotary tables for `positions` (int or float, [S] or [B, S]; B gives [B, 1, S, hd] tables). */
export function rotaryTables(positions: Tensor, headDim: number, base = 10000): Rope {
  const half = headDim / 2;
  const inv = E.tensor(
    Array.from({ length: half }, (_, i) => 1 / base ** ((2 * i) / headDim)),
    [half],
  );
  const ang = E.mul(E.unsqueeze(E.cast(positions, 'float32'), -1), inv);
  let emb = E.concat([ang, ang], -1);
  if (positions.rank === 2) emb = E.unsqueeze(emb, 1);
  return { cos: E.cos(emb), sin: E.sin(emb) };
}

/** x·cos + rotate_half(x)·sin over the last axis of x [B, H, S, hd]. */
export function applyRotary(x: Tensor, r: Rope): Tensor {
  const [a, b] = E.split(x, 2, -1);
  return E.add(E.mul(x, r.cos), E.mul(E.concat([E.neg(b!), a!], -1), r.sin));
}

// ---- attention ----

/** Keys/values of earlier positions, read as graph inputs: attention runs over [past ; this call's keys]. */
export interface KvCache {
  /** [B, H, Tc, hd] keys (rotary already applied) and values of the cached positions. */
  past?: { k: Tensor; v: Tensor; visible: Tensor /* bool, broadcastable to [B, H, Tq, Tc] */ };
  /** Receives this call's keys and values [B, H, Tq, hd] (after rotary), e.g. to return them from a program. */
  keep?: (k: Tensor, v: Tensor) => void;
}

export interface AttendOptions {
  mask?: Mask;
  /** Cross-attention: keys and values come from this sequence [B, Tk, kvDim] instead of x. */
  context?: Tensor;
  /** Rotary tables for the queries and (self-attention) keys. */
  rope?: Rope;
  cache?: KvCache;
}

/** Which projection each parameter name is: q, k, v, fused qkv (self) or kv (cross), and the output o. */
export type ProjectionRole = 'q' | 'k' | 'v' | 'qkv' | 'kv' | 'o';

export interface AttentionConfig {
  dim: number;
  heads: number;
  /** Width of the context for cross-attention (default dim). */
  kvDim?: number;
  /** Parameter name → role, in declaration order (default timm's fused `{ qkv: 'qkv', proj: 'o' }`). */
  projections?: Record<string, ProjectionRole>;
  /** Biases on the q/k/v projections (default true) and the output projection (default true). */
  qkvBias?: boolean;
  outBias?: boolean;
  /** Dropout on the attention probabilities while training. */
  attnDropout?: number;
}

/** Multi-head attention (self or cross) whose projections are Linear layers named per model. */
export class MultiHeadAttention extends Module {
  readonly heads: number;
  readonly headDim: number;
  private readonly roles: Map<ProjectionRole, Linear> = new Map();
  constructor(readonly cfg: AttentionConfig) {
    super();
    const { dim, heads } = cfg;
    if (dim % heads !== 0) throw new Error(`attention width ${dim} not divisible by ${heads} heads`);
    this.heads = heads;
    this.headDim = dim / heads;
    const kv = cfg.kvDim ?? dim;
    const shapes: Record<ProjectionRole, [number, number]> = {
      q: [dim, dim],
      k: [kv, dim],
      v: [kv, dim],
      qkv: [dim, 3 * dim],
      kv: [kv, 2 * dim],
      o: [dim, dim],
    };
    const projections: Record<string, ProjectionRole> = cfg.projections ?? { qkv: 'qkv', proj: 'o' };
    for (const [name, role] of Object.entries(projections)) {
      const [i, o] = shapes[role];
      const lin = new Linear(i, o, { bias: role === 'o' ? (cfg.outBias ?? true) : (cfg.qkvBias ?? true) });
      (this as unknown as Record<string, Linear>)[name] = lin;
      this.roles.set(role, lin);
    }
    if (!this.roles.has('o')) throw new Error('attention: no output projection (role o)');
  }

  /** The Linear playing `role` (for initialisers that set projections directly). */
  projection(role: ProjectionRole): Linear {
    const l = this.roles.get(role);
    if (!l) throw new Error(`attention has no ${role} projection`);
    return l;
  }

  /** [B, T, n·dim] → n tensors [B, H, T, hd]. */
  private heads4(y: Tensor, n: number): Tensor[] {
    const [b, t] = y.shape as [number, number];
    const z = E.transpose(E.reshape(y, [b, t, n, this.heads, this.headDim]), [2, 0, 3, 1, 4]);
    return n === 1 ? [E.squeeze(z, 0)] : E.split(z, n, 0).map((s) => E.squeeze(s, 0));
  }

  forward(x: Tensor, o: AttendOptions = {}): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const src = o.context ?? x;
    const r = this.roles;
    let q: Tensor, k: Tensor, v: Tensor;
    if (r.has('qkv')) [q, k, v] = this.heads4(r.get('qkv')!.forward(x), 3) as [Tensor, Tensor, Tensor];
    else {
      [q] = this.heads4(r.get('q')!.forward(x), 1) as [Tensor];
      if (r.has('kv')) [k, v] = this.heads4(r.get('kv')!.forward(src), 2) as [Tensor, Tensor];
      else {
        [k] = this.heads4(r.get('k')!.forward(src), 1) as [Tensor];
        [v] = this.heads4(r.get('v')!.forward(src), 1) as [Tensor];
      }
    }
    if (o.rope) {
      q = applyRotary(q, o.rope);
      if (!o.context) k = applyRotary(k, o.rope);
    }
    o.cache?.keep?.(k, v);
    const y = attend(q, k, v, o.mask ?? 'none', o.cache?.past, this.training ? (this.cfg.attnDropout ?? 0) : 0);
    return this.projection('o').forward(E.reshape(E.transpose(y, [0, 2, 1, 3]), [b, t, c]));
  }
}

/**
 * softmax(q·kᵀ/√d + mask)·v; with `past`, over [past keys ; k] without concatenating the cache: the two score
 * blocks are concatenated (small, [.., Tq, Tc + Tk]), and the output is p_past·v_past + p_new·v.
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, mask: Mask, past?: KvCache['past'], dropout = 0): Tensor {
  if (!past) {
    if (dropout === 0) return E.attention(q, k, v, { mask });
    const d = q.shape[q.rank - 1]!;
    let s = E.mul(E.matmul(q, E.swapAxes(k)), 1 / Math.sqrt(d));
    if (mask !== 'none') s = E.where(asBool(mask, q.shape[q.rank - 2]!, k.shape[k.rank - 2]!), s, -1e9);
    return E.matmul(E.dropout(E.softmax(s, -1), dropout, true), v);
  }
  const d = q.shape[q.rank - 1]!;
  const scale = 1 / Math.sqrt(d);
  const tc = past.k.shape[past.k.rank - 2]!,
    tq = q.shape[q.rank - 2]!,
    tk = k.shape[k.rank - 2]!;
  const sPast = E.where(past.visible, E.mul(E.matmul(q, E.swapAxes(past.k)), scale), -1e9);
  let sNew = E.mul(E.matmul(q, E.swapAxes(k)), scale);
  if (mask !== 'none') sNew = E.where(asBool(mask, tq, tk), sNew, -1e9);
  const p = E.softmax(E.concat([sPast, sNew], -1), -1);
  const [pPast, pNew] = E.split(p, [tc, tk], -1);
  return E.add(E.matmul(pPast!, past.v), E.matmul(pNew!, v));
}

// ---- MLPs ----

export interface MlpConfig {
  /** 'gelu': fc2(gelu(fc1 x)); 'swiglu': w2(silu(w1 x) · w3 x). */
  kind: 'gelu' | 'swiglu';
  hidden: number;
  bias?: boolean;
  /** GELU's tanh approximation (default exact erf). */
  approximate?: boolean;
  /**
   * Parameter names in declaration order (gelu default { fc1: 'in', fc2: 'out' };
   * swiglu { w1: 'gate', w3: 'in', w2: 'out' }).
   */
  names?: Record<string, 'in' | 'gate' | 'out'>;
  /** Dropout on the output while training (GPTC's Sequential ends in one). */
  dropout?: number;
}

export class Mlp extends Module {
  private readonly parts = new Map<'in' | 'gate' | 'out', Linear>();
  constructor(
    dim: number,
    readonly cfg: MlpConfig,
  ) {
    super();
    const names = cfg.names ?? (cfg.kind === 'gelu' ? { fc1: 'in', fc2: 'out' } : { w1: 'gate', w3: 'in', w2: 'out' });
    for (const [name, role] of Object.entries(names)) {
      const lin =
        role === 'out'
          ? new Linear(cfg.hidden, dim, { bias: cfg.bias ?? true })
          : new Linear(dim, cfg.hidden, { bias: cfg.bias ?? true });
      (this as unknown as Record<string, Linear>)[name] = lin;
      this.parts.set(role, lin);
    }
  }

  /** The Linear playing `role` (for initialisers that set layers directly). */
  projection(role: 'in' | 'gate' | 'out'): Linear {
    const l = this.parts.get(role);
    if (!l) throw new Error(`MLP has no ${role} layer`);
    return l;
  }

  forward(x: Tensor): Tensor {
    const p = this.parts;
    const h =
      this.cfg.kind === 'gelu'
        ? E.gelu(p.get('in')!.forward(x), this.cfg.approximate ? 'tanh' : 'none')
        : E.mul(E.silu(p.get('gate')!.forward(x)), p.get('in')!.forward(x));
    return E.dropout(p.get('out')!.forward(h), this.cfg.dropout ?? 0, this.training);
  }
}

// ---- the block ----

export type BlockPart = 'norm1' | 'attn' | 'norm2' | 'mlp' | 'normCross' | 'cross';

export interface BlockConfig {
  dim: number;
  heads: number;
  /** 'layer' (LayerNorm with bias) or 'rms' (RMSNorm with weight). */
  norm: 'layer' | 'rms';
  normEps?: number;
  attention?: Omit<AttentionConfig, 'dim' | 'heads' | 'kvDim'>;
  mlp: MlpConfig;
  /** A cross-attention sublayer after self-attention, over a context of this width. */
  cross?: { kvDim: number } & Omit<AttentionConfig, 'dim' | 'heads' | 'kvDim'>;
  /** Dropout on each residual branch while training. */
  dropout?: number;
  /** Parameter name → part, in declaration order (default norm1, attn, norm2, mlp, then normCross, cross). */
  names?: Partial<Record<string, BlockPart>>;
}

/** Pre-norm block: x + attn(norm1 x) [+ cross(normCross x, context)], then x + mlp(norm2 x). */
export class TransformerBlock extends Module {
  private readonly parts = new Map<BlockPart, Module>();
  constructor(readonly cfg: BlockConfig) {
    super();
    const names = cfg.names ?? {
      norm1: 'norm1',
      attn: 'attn',
      norm2: 'norm2',
      mlp: 'mlp',
      ...(cfg.cross ? { normCross: 'normCross', cross: 'cross' } : {}),
    };
    const norm = () =>
      cfg.norm === 'rms' ? new RMSNorm(cfg.dim, cfg.normEps ?? 1e-6) : new LayerNorm(cfg.dim, cfg.normEps ?? 1e-5);
    for (const [name, part] of Object.entries(names) as [string, BlockPart][]) {
      const m =
        part === 'attn'
          ? new MultiHeadAttention({ dim: cfg.dim, heads: cfg.heads, ...cfg.attention })
          : part === 'cross'
            ? new MultiHeadAttention({
                dim: cfg.dim,
                heads: cfg.heads,
                projections: { q: 'q', kv: 'kv', o: 'o' },
                ...cfg.cross,
              })
            : part === 'mlp'
              ? new Mlp(cfg.dim, cfg.mlp)
              : norm();
      (this as unknown as Record<string, Module>)[name] = m;
      this.parts.set(part, m);
    }
  }

  part<T extends Module>(p: BlockPart): T {
    const m = this.parts.get(p);
    if (!m) throw new Error(`transformer block has no ${p}`);
    return m as T;
  }

  forward(x: Tensor, o: AttendOptions & { crossContext?: Tensor; crossMask?: Mask } = {}): Tensor {
    const p = this.cfg.dropout ?? 0;
    const norm = (k: BlockPart, y: Tensor) => this.part<LayerNorm | RMSNorm>(k).forward(y);
    const branch = (y: Tensor) => E.dropout(y, p, this.training);
    let h = E.add(
      x,
      branch(
        this.part<MultiHeadAttention>('attn').forward(norm('norm1', x), { mask: o.mask, rope: o.rope, cache: o.cache }),
      ),
    );
    if (this.parts.has('cross')) {
      if (!o.crossContext) throw new Error('transformer block: cross-attention needs a context');
      h = E.add(
        h,
        branch(
          this.part<MultiHeadAttention>('cross').forward(norm('normCross', h), {
            context: o.crossContext,
            mask: o.crossMask,
          }),
        ),
      );
    }
    return E.add(h, branch(this.part<Mlp>('mlp').forward(norm('norm2', h))));
  }
}
