import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import {
  andMasks, Embedding, keyPaddingMask, LayerNorm, Linear, Module, normal, constant, prefixLmMask, RMSNorm, rotaryTables,
  TransformerBlock, type KvCache, type Mask,
} from '../../nn/index.js';
import { VtokError, check } from '../../util/errors.js';

/**
 * VideoPoet's prefix language model (paper §2–3): a decoder-only transformer over the unified vocabulary whose
 * attention is bidirectional over the conditioning prefix and causal over the output.
 *
 *   ids ─ tok_emb ─┐
 *   text ─ text_proj (Linear with bias) into the text slot ─┘ (text never enters as ids)
 *     [+ pos_emb for learned positions]
 *   ─ blocks.0 … blocks.{L−1}: x + attn(attn_norm x), x + mlp(mlp_norm x)    (pre-norm, prefix-LM mask)
 *   ─ norm ─ lm_head (untied) → logits over the vocabulary
 *
 * Defaults are current LLM practice (RMSNorm, rotary, SwiGLU, no biases); LayerNorm, learned positions and GELU
 * are options. The "bench prefix LM" (bench/README.md) is `benchPrefixLmConfig()`.
 */
export interface PrefixLmConfig {
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  /** MLP hidden width. */
  hidden: number;
  norm?: 'rms' | 'layer';
  normEps?: number;
  mlp?: 'swiglu' | 'gelu';
  positions?: 'rotary' | 'learned';
  ropeBase?: number;
  /** Longest sequence (learned positions need it; also checked on input). */
  maxLength: number;
  /** Biases in the blocks' linear layers (the head never has one). */
  bias?: boolean;
  /** Width of the text embeddings fed at the text slot (null: a model without text). */
  textDim: number | null;
}

export type ResolvedPrefixLmConfig = Required<PrefixLmConfig>;

export function prefixLmConfig(c: PrefixLmConfig): ResolvedPrefixLmConfig {
  for (const k of ['vocabSize', 'dim', 'layers', 'heads', 'hidden', 'maxLength'] as const) {
    check(Number.isInteger(c[k]) && c[k] > 0, `prefix LM config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  check(c.dim % c.heads === 0 && (c.dim / c.heads) % 2 === 0, `prefix LM config: dim ${c.dim} must split into ${c.heads} heads of even width`);
  check(c.textDim === null || (Number.isInteger(c.textDim) && c.textDim > 0), `prefix LM config: textDim must be a positive integer or null, got ${c.textDim}`);
  const norm = c.norm ?? 'rms';
  return {
    ...c, norm, normEps: c.normEps ?? (norm === 'layer' ? 1e-5 : 1e-6), mlp: c.mlp ?? 'swiglu', positions: c.positions ?? 'rotary',
    ropeBase: c.ropeBase ?? 10000, bias: c.bias ?? false,
  };
}

/** The bench prefix LM: vocabulary 2^18 visual + 4×1024 audio + 16 special, 12 × 768, SwiGLU 2048, T5-XL text. */
export function benchPrefixLmConfig(): PrefixLmConfig {
  return { vocabSize: 2 ** 18 + 4 * 1024 + 16, dim: 768, layers: 12, heads: 12, hidden: 2048, maxLength: 4096, textDim: 2048 };
}

/** Parameters of a config, counted from the shapes the constructor makes (no weights allocated). */
export function prefixLmParameterCount(config: PrefixLmConfig): number {
  const c = prefixLmConfig(config);
  const d = c.dim, b = c.bias ? 1 : 0;
  const normP = c.norm === 'layer' ? 2 * d : d;
  const attn = 4 * (d * d + b * d);
  const mlp = c.mlp === 'swiglu' ? 2 * (d * c.hidden + b * c.hidden) + c.hidden * d + b * d : d * c.hidden + b * c.hidden + c.hidden * d + b * d;
  const block = 2 * normP + attn + mlp;
  const text = c.textDim === null ? 0 : c.textDim * d + d;
  const pos = c.positions === 'learned' ? c.maxLength * d : 0;
  return c.vocabSize * d + text + pos + c.layers * block + normP + c.vocabSize * d;
}

/** The model's input (contract with the sequence builders): ids [B, S] with the text slot at textStart. */
export interface PrefixLmInput {
  ids: Tensor;
  /** P_b per row, int [B]: positions < P_b form the bidirectional prefix. */
  prefixLength: Tensor;
  /** Text embeddings [B, Lt, textDim], placed at positions textStart … textStart+Lt−1. */
  text?: Tensor;
  textStart?: number;
  /** Which text positions hold a token, bool [B, Lt]; the others are hidden from every query. */
  textValid?: Tensor;
}

export class PrefixLm extends Module {
  tok_emb: Embedding;
  text_proj: Linear | null;
  pos_emb: Embedding | null;
  blocks: TransformerBlock[];
  norm: RMSNorm | LayerNorm;
  lm_head: Linear;
  readonly cfg: ResolvedPrefixLmConfig;

  constructor(config: PrefixLmConfig) {
    super();
    const c = (this.cfg = prefixLmConfig(config));
    this.tok_emb = new Embedding(c.vocabSize, c.dim);
    this.text_proj = c.textDim === null ? null : new Linear(c.textDim, c.dim);
    this.pos_emb = c.positions === 'learned' ? new Embedding(c.maxLength, c.dim) : null;
    this.blocks = Array.from({ length: c.layers }, () => new TransformerBlock({
      dim: c.dim, heads: c.heads, norm: c.norm, normEps: c.normEps,
      names: { attn_norm: 'norm1', attn: 'attn', mlp_norm: 'norm2', mlp: 'mlp' },
      attention: { projections: { wq: 'q', wk: 'k', wv: 'v', wo: 'o' }, qkvBias: c.bias, outBias: c.bias },
      mlp: { kind: c.mlp, hidden: c.hidden, bias: c.bias },
    }));
    this.norm = c.norm === 'rms' ? new RMSNorm(c.dim, c.normEps) : new LayerNorm(c.dim, c.normEps);
    this.lm_head = new Linear(c.dim, c.vocabSize, { bias: false });
    // N(0, 0.02) weights and embeddings, zero biases (GPT-2 / the bench model)
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear || m instanceof Embedding) m.weight.value = normal(m.weight.shape, 0.02);
      if (m instanceof Linear && m.bias) m.bias.value = constant(m.bias.shape, 0);
    }
  }

  get headDim(): number {
    return this.cfg.dim / this.cfg.heads;
  }

  /** Token embeddings with the projected text in its slot: [B, S, dim]. */
  embed(x: PrefixLmInput): Tensor {
    const tok = this.tok_emb.forward(x.ids);
    if (!x.text) return tok;
    if (!this.text_proj) throw new VtokError('prefix LM: this model has no text input (textDim null) but text was given');
    const [B, S] = x.ids.shape, [tb, lt, td] = x.text.shape;
    const start = x.textStart ?? 0;
    check(tb === B && td === this.cfg.textDim, `prefix LM: text embeddings [${x.text.shape}] must be [${B}, L, ${this.cfg.textDim}]`);
    check(start >= 0 && start + lt <= S, `prefix LM: the text slot ${start}…${start + lt - 1} does not fit ${S} positions`);
    const parts = [E.narrow(tok, 1, 0, start), this.text_proj.forward(x.text), E.narrow(tok, 1, start + lt, S - start - lt)];
    return E.concat(parts.filter((p) => p.shape[1] > 0), 1);
  }

  /** Which keys are real (false at invalid text positions), bool [B, S], or null when all are. */
  keyValid(x: PrefixLmInput, S: number): Tensor | null {
    if (!x.text || !x.textValid) return null;
    const B = x.ids.shape[0], start = x.textStart ?? 0, lt = x.text.shape[1];
    const ones = (n: number) => E.cast(E.full([B, n], 1, 'uint8'), 'bool');
    return E.concat([ones(start), x.textValid, ones(S - start - lt)].filter((p) => p.shape[1] > 0), 1);
  }

  /**
   * The blocks over embeddings h [B, T, dim] at `positions` (int, [T]), under `mask`; `cache(l)` gives layer l's
   * KV-cache hooks. Returns the final-normed hidden states [B, T, dim].
   */
  run(h: Tensor, positions: Tensor, mask: Mask, cache?: (layer: number) => KvCache): Tensor {
    const rope = this.cfg.positions === 'rotary' ? rotaryTables(positions, this.headDim, this.cfg.ropeBase) : undefined;
    if (this.pos_emb) h = E.add(h, this.pos_emb.forward(positions));
    this.blocks.forEach((blk, l) => (h = blk.forward(h, { mask, rope, cache: cache?.(l) })));
    return this.norm.forward(h);
  }

  /** Final hidden states [B, S, dim] under the prefix-LM mask (and the text key padding). */
  hidden(x: PrefixLmInput): Tensor {
    if (x.ids.rank !== 2) throw new VtokError(`prefix LM: expected ids [batch, positions], got [${x.ids.shape}]`);
    const [B, S] = x.ids.shape;
    check(S <= this.cfg.maxLength, `prefix LM: ${S} positions exceed the model's maxLength ${this.cfg.maxLength}`);
    check(x.prefixLength.shape.join() === String(B), `prefix LM: prefixLength must be [${B}], got [${x.prefixLength.shape}]`);
    const valid = this.keyValid(x, S);
    const mask = andMasks([prefixLmMask(x.prefixLength, S), ...(valid ? [keyPaddingMask(valid)] : [])], S, S);
    return this.run(this.embed(x), E.arange(0, S, 1, 'int64'), mask);
  }

  /** Logits [B, S, vocabSize]. */
  forward(x: PrefixLmInput): Tensor {
    return this.lm_head.forward(this.hidden(x));
  }
}

/** Targets with this value are not scored. */
export const IGNORE = -100;

/** Rows of the head and its cross-entropy computed together (see `headCrossEntropy`). */
export const HEAD_CHUNK_ROWS = 256;

/**
 * Next-token cross-entropy on the output only: position i predicts ids[i+1] where i+1 ≥ P_b (so the first output
 * token is predicted from the last prefix position, and closing tokens are targets); mean over scored positions.
 * `scoreFrom` (a static lower bound on min_b P_b − 1) lets the head skip positions that are never scored: the head
 * then runs on the hidden states of positions ≥ scoreFrom only.
 */
export function prefixLmLoss(model: PrefixLm, x: PrefixLmInput, opts: { scoreFrom?: number; headChunk?: number } = {}): Tensor {
  const [B, S] = x.ids.shape;
  const from = opts.scoreFrom ?? 0;
  check(Number.isInteger(from) && from >= 0 && from < S - 1, `prefix LM loss: scoreFrom ${from} outside [0, ${S - 1})`);
  const n = S - 1 - from;
  const h = E.narrow(model.hidden(x), 1, from, n);
  const next = E.narrow(x.ids, 1, from + 1, n);
  const pos = E.reshape(E.arange(from + 1, S, 1, 'int64'), [1, n]);
  const scored = E.greaterEqual(pos, E.reshape(E.cast(x.prefixLength, 'int64'), [B, 1]));
  const targets = E.where(scored, E.cast(next, 'int64'), E.tensor([IGNORE], [], 'int64'));
  const rows = headCrossEntropy(E.reshape(h, [B * n, model.cfg.dim]), model.lm_head.weight.value, E.reshape(targets, [B * n]), opts.headChunk);
  return E.maskedMean(rows, E.reshape(scored, [B * n]));
}

/**
 * Per-row cross-entropy of the logits h Wᵀ (h [N, D], head weight W [V, D]) against `targets` [N] (IGNORE rows give
 * 0), without vocabulary-sized tensors beyond one chunk's working set: the logits are made `chunk` rows at a time and
 * reduced to their log-sum-exp, target logit and softmax; the softmax is what the backward pass keeps (N × V floats
 * in all), which it turns into (softmax − onehot)·g, the gradients of h and W. A full-vocabulary head (266,256 ids)
 * over 1,024 rows would otherwise hold several 1.1 GB tensors (logits, log-softmax, their gradients) at once.
 * The weight gradient is accumulated as Wᵀ's, [D, V] = Σ hᵀ·d, and transposed once: onnxruntime makes that
 * product faster than dᵀ·h, the other way round.
 */
export function headCrossEntropy(h: Tensor, w: Tensor, targets: Tensor, chunk = HEAD_CHUNK_ROWS): Tensor {
  const [N, D] = h.shape;
  check(w.rank === 2 && w.shape[1] === D && targets.shape.join() === String(N), `head cross-entropy: h [${h.shape}], W [${w.shape}], targets [${targets.shape}] do not fit`);
  check(Number.isInteger(chunk) && chunk > 0, `head cross-entropy: chunk must be a positive integer, got ${chunk}`);
  const valid = E.notEqual(targets, E.tensor([IGNORE], [], 'int64'));
  const safe = E.reshape(E.where(valid, targets, E.tensor([0], [], 'int64')), [N, 1]);
  const starts = Array.from({ length: Math.ceil(N / chunk) }, (_, i) => i * chunk);
  const rowsOf = (t: Tensor, s: number) => E.narrow(t, 0, s, Math.min(chunk, N - s));
  const [loss] = E.customVjp(
    (hh: Tensor, ww: Tensor) => {
      const per: Tensor[] = [], soft: Tensor[] = [];
      for (const s of starts) {
        // one chunk's logits at a time: each chunk starts after the previous one's softmax exists
        const logits = E.linear(after(rowsOf(hh, s), soft.slice(-1)), ww);
        const lse = E.logsumexp(logits, -1, true);
        per.push(E.sub(E.reshape(lse, [-1]), E.reshape(E.takeAlongAxis(logits, rowsOf(safe, s), -1), [-1])));
        soft.push(E.exp(E.sub(logits, lse)));
      }
      return [E.where(valid, per.length === 1 ? per[0]! : E.concat(per, 0), 0), ...soft];
    },
    ([g], [hh, ww], [, ...soft]) => {
      const coef = E.reshape(E.where(valid, g!, 0), [N, 1]);
      const gh: Tensor[] = [];
      let gwT: Tensor | null = null;
      starts.forEach((s, k) => {
        // Each chunk starts after the previous one's two gradient products, so that one chunk's [n, V] gradient
        // exists at a time (onnxruntime orders nodes by a depth-first walk from the outputs, which would otherwise
        // make every chunk's gradient of the logits before the first product uses one).
        const c = rowsOf(coef, s);
        const p = after(soft[k]!, gh.length ? [gh[gh.length - 1]!, gwT!] : []);
        // d loss / d logits = (softmax − onehot(target)) · g
        const d = E.scatterAdd(E.mul(p, c), 1, rowsOf(safe, s), E.neg(c));
        gh.push(E.matmul(d, ww));
        const part = E.matmul(E.swapAxes(rowsOf(hh, s)), d);
        gwT = gwT ? E.add(gwT, part) : part;
      });
      return [gh.length === 1 ? gh[0]! : E.concat(gh, 0), E.swapAxes(gwT!)];
    },
  )(h, w);
  return loss!;
}

/** x, made to depend on `deps` (x + 0·(one element of each)) so that onnxruntime runs them before what reads x. */
function after(x: Tensor, deps: Tensor[]): Tensor {
  if (!deps.length) return x;
  const first = deps.map((d) => E.narrow(E.reshape(d, [-1]), 0, 0, 1));
  return E.add(x, E.mul(first.length === 1 ? first[0]! : E.sum(E.concat(first, 0), 0, true), 0));
}
