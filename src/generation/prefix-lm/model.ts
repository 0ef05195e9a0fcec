import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import {
  DecoderLm,
  decoderLmConfig,
  IGNORE,
  type Linear,
  nextTokenLoss,
  type DecoderLmInput,
  type ResolvedDecoderLmConfig,
} from '../../nn/index.js';
import { check } from '../../util/errors.js';

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
 * It is the decoder shell (nn/decoder-lm.ts) with the prefix-LM mask, text conditioning and the shell's default
 * names. Defaults are current LLM practice (RMSNorm, rotary, SwiGLU, no biases); LayerNorm, learned positions and
 * GELU are options. The "bench prefix LM" (bench/README.md) is `benchPrefixLmConfig()`.
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

export type ResolvedPrefixLmConfig = ResolvedDecoderLmConfig & { vocabSize: number };

/** The decoder-shell config of a prefix LM config, checked. */
export function prefixLmConfig(c: PrefixLmConfig): ResolvedPrefixLmConfig {
  for (const k of ['vocabSize', 'dim', 'layers', 'heads', 'hidden', 'maxLength'] as const) {
    check(
      Number.isInteger(c[k]) && c[k] > 0,
      `prefix LM config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`,
    );
  }
  check(
    c.dim % c.heads === 0 && (c.dim / c.heads) % 2 === 0,
    `prefix LM config: dim ${c.dim} must split into ${c.heads} heads of even width`,
  );
  check(
    c.textDim === null || (Number.isInteger(c.textDim) && c.textDim > 0),
    `prefix LM config: textDim must be a positive integer or null, got ${c.textDim}`,
  );
  const { vocabSize, dim, layers, heads, hidden, norm, normEps, mlp, positions, ropeBase, maxLength, bias } = c;
  const shell = decoderLmConfig({
    vocabSize,
    dim,
    layers,
    heads,
    hidden,
    norm,
    normEps,
    mlp,
    positions,
    ropeBase,
    maxLength,
    bias,
    textDim: c.textDim,
    mask: 'prefix',
  });
  return { ...shell, vocabSize };
}

/** The bench prefix LM: vocabulary 2^18 visual + 4×1024 audio + 16 special, 12 × 768, SwiGLU 2048, T5-XL text. */
export function benchPrefixLmConfig(): PrefixLmConfig {
  return {
    vocabSize: 2 ** 18 + 4 * 1024 + 16,
    dim: 768,
    layers: 12,
    heads: 12,
    hidden: 2048,
    maxLength: 4096,
    textDim: 2048,
  };
}

/** Parameters of a config, counted from the shapes the constructor makes (no weights allocated). */
export function prefixLmParameterCount(config: PrefixLmConfig): number {
  const c = prefixLmConfig(config);
  const d = c.dim,
    b = c.bias ? 1 : 0;
  const normP = c.norm === 'layer' ? 2 * d : d;
  const attn = 4 * (d * d + b * d);
  const mlp =
    c.mlp === 'swiglu'
      ? 2 * (d * c.hidden + b * c.hidden) + c.hidden * d + b * d
      : d * c.hidden + b * c.hidden + c.hidden * d + b * d;
  const block = 2 * normP + attn + mlp;
  const text = c.textDim === null ? 0 : c.textDim * d + d;
  const pos = c.positions === 'learned' ? c.maxLength * d : 0;
  return c.vocabSize * d + text + pos + c.layers * block + normP + c.vocabSize * d;
}

/** The model's input (contract with the sequence builders): ids [B, S] with the text slot at textStart. */
export interface PrefixLmInput extends DecoderLmInput {
  ids: Tensor;
  prefixLength: Tensor;
}

export class PrefixLm extends DecoderLm {
  declare readonly cfg: ResolvedPrefixLmConfig;
  declare readonly lm_head: Linear;

  constructor(config: PrefixLmConfig) {
    super(prefixLmConfig(config));
    // N(0, 0.02) weights and embeddings, zero biases (GPT-2 / the bench model)
    this.initNormal(0.02);
  }
}

/**
 * Next-token cross-entropy on the output only: position i predicts ids[i+1] where i+1 ≥ P_b (so the first output
 * token is predicted from the last prefix position, and closing tokens are targets); mean over scored positions.
 * `scoreFrom` (a static lower bound on min_b P_b − 1) lets the head skip positions that are never scored: the head
 * then runs on the hidden states of positions ≥ scoreFrom only.
 */
export function prefixLmLoss(
  model: PrefixLm,
  x: PrefixLmInput,
  opts: { scoreFrom?: number; headChunk?: number } = {},
): Tensor {
  const [B, S] = x.ids.shape as [number, number];
  const from = opts.scoreFrom ?? 0;
  check(Number.isInteger(from) && from >= 0 && from < S - 1, `prefix LM loss: scoreFrom ${from} outside [0, ${S - 1})`);
  const n = S - 1 - from;
  const h = E.narrow(model.hidden(x), 1, from, n);
  const next = E.narrow(x.ids, 1, from + 1, n);
  const pos = E.reshape(E.arange(from + 1, S, 1, 'int64'), [1, n]);
  const scored = E.greaterEqual(pos, E.reshape(E.cast(x.prefixLength, 'int64'), [B, 1]));
  const targets = E.where(scored, E.cast(next, 'int64'), E.tensor([IGNORE], [], 'int64'));
  return nextTokenLoss(model, h, targets, { chunk: opts.headChunk });
}
