import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { DecoderLm, IGNORE, nextTokenLoss, type ResolvedDecoderLmConfig } from '../../nn/index.js';
import { defaultRng } from '../../engine/core.js';
import { VtokError, check } from '../../util/errors.js';
import type { Rng } from '../../util/rng.js';
import { compileInference, type InferenceFn } from '../../nn/compiled.js';
import { sampleRows, suppressIds } from '../../util/sampling.js';

/**
 * A small decoder-only transformer language model over token ids (GPT-2 / nanoGPT shape), the decoder shell
 * (nn/decoder-lm.ts) with learned positions, LayerNorm, GELU, biases and a causal mask:
 *
 *   ids ─ wte (token embedding) + wpe (learned position embedding) ─ dropout
 *       ─ h.0 … h.{L−1}: x + attn(ln_1(x)), then x + mlp(ln_2(x))   (pre-LN, causal self-attention)
 *       ─ ln_f ─ lm_head (or the token embedding, tied) → logits over the vocabulary
 *
 * Parameter names follow nanoGPT at the top level (wte, wpe, h.N, ln_f, lm_head); inside a block the attention
 * and MLP come from the shared transformer block (attn.qkv, attn.proj, mlp.fc1, mlp.fc2).
 *
 * Around the model: the next-token objective (a BOS token prepended), validation negative log-likelihood per
 * token, and sampling (temperature, top-k, top-p) from the host RNG with one compiled forward per generated
 * position.
 */
export interface GptConfig {
  /** Number of token ids the model reads and predicts, special tokens (BOS, …) included. */
  vocabSize: number;
  /** Longest input sequence (number of learned positions). */
  maxLength: number;
  layers: number;
  heads: number;
  dim: number;
  /** Dropout on embeddings and residual branches while training (default 0). */
  dropout?: number;
  /** Biases in the linear layers (default true; lm_head never has one). */
  bias?: boolean;
  /** Share the token embedding with the output head (default false: a separate lm_head). */
  tied?: boolean;
  /** MLP hidden width / dim (default 4). */
  mlpRatio?: number;
}

export class Gpt extends DecoderLm {
  declare readonly cfg: ResolvedDecoderLmConfig & { vocabSize: number };

  constructor(c: GptConfig) {
    const mlpRatio = c.mlpRatio ?? 4;
    check(
      mlpRatio > 0 && Number.isInteger(mlpRatio * c.dim),
      `GPT config: mlpRatio ${mlpRatio} × dim ${c.dim} must be a positive integer`,
    );
    super({
      vocabSize: c.vocabSize,
      dim: c.dim,
      layers: c.layers,
      heads: c.heads,
      hidden: c.dim * mlpRatio,
      maxLength: c.maxLength,
      mask: 'causal',
      positions: 'learned',
      norm: 'layer',
      mlp: 'gelu',
      bias: c.bias ?? true,
      tied: c.tied,
      dropout: c.dropout,
      names: { embedding: 'wte', positions: 'wpe', blocks: 'h', norm: 'ln_f', head: 'lm_head' },
      blockNames: {
        parts: { ln_1: 'norm1', attn: 'attn', ln_2: 'norm2', mlp: 'mlp' },
        projections: { qkv: 'qkv', proj: 'o' },
      },
    });
    // GPT-2's initialisation: the projections ending a residual branch scaled by 1/√(2L)
    this.initNormal(0.02, 0.02 / Math.sqrt(2 * c.layers));
  }
}

// ---- the next-token objective ----

/** Mean next-token cross-entropy (nats) of the model on `inputs` against `targets` ([B, T] each; IGNORE = unscored). */
export function lmLoss(model: Gpt, inputs: Tensor, targets: Tensor): Tensor {
  return nextTokenLoss(model, model.hidden({ ids: inputs }), targets);
}

/** `count` token sequences of `length` ids each, row-major. */
export interface TokenSequences {
  ids: Int32Array;
  count: number;
  length: number;
}

export function tokenSequences(ids: ArrayLike<number>, count: number, length: number): TokenSequences {
  check(
    Number.isInteger(count) && count > 0 && Number.isInteger(length) && length > 0,
    `token sequences: need positive count and length, got ${count} × ${length}`,
  );
  check(ids.length === count * length, `token sequences: ${ids.length} ids for ${count} × ${length}`);
  return { ids: Int32Array.from(ids), count, length };
}

export interface LmBatch extends Record<string, Tensor> {
  /** [B, L]: BOS then the first L−1 tokens of each sequence. */
  inputs: Tensor;
  /** [B, L]: the L tokens (IGNORE in padding rows). */
  targets: Tensor;
}

/**
 * The teacher-forcing batch of the given rows: inputs [BOS, x₀ … x_{L−2}], targets [x₀ … x_{L−1}], so every
 * token of a sequence is predicted, the first one from BOS alone. Rows < 0 are padding (not scored).
 */
export function nextTokenBatch(seqs: TokenSequences, rows: ArrayLike<number>, bos: number): LmBatch {
  const L = seqs.length,
    B = rows.length;
  const inputs = new Int32Array(B * L),
    targets = new Int32Array(B * L).fill(IGNORE);
  for (let b = 0; b < B; b++) {
    const r = rows[b]!;
    inputs[b * L] = bos;
    if (r < 0) continue;
    check(Number.isInteger(r) && r < seqs.count, `token sequence ${r} out of range [0, ${seqs.count})`);
    const src = seqs.ids.subarray(r * L, (r + 1) * L);
    inputs.set(src.subarray(0, L - 1), b * L + 1);
    targets.set(src, b * L);
  }
  return { inputs: E.concrete(inputs, [B, L], 'int32'), targets: E.concrete(targets, [B, L], 'int32') };
}

function checkIds(seqs: TokenSequences, model: Gpt, bos: number): void {
  const V = model.cfg.vocabSize;
  check(Number.isInteger(bos) && bos >= 0 && bos < V, `BOS id ${bos} is outside the vocabulary [0, ${V})`);
  check(
    seqs.length <= model.cfg.maxLength,
    `sequences of ${seqs.length} tokens need a maxLength ≥ ${seqs.length}, the model has ${model.cfg.maxLength}`,
  );
  for (let i = 0; i < seqs.ids.length; i++) {
    const v = seqs.ids[i]!;
    if (v < 0 || v >= V)
      throw new VtokError(
        `token ${i % seqs.length} of sequence ${Math.floor(i / seqs.length)} is ${v}, outside the vocabulary [0, ${V})`,
      );
  }
}

// ---- compiled forward passes (weights as inputs, so training in between needs no recompilation) ----

interface Compiled {
  nll: InferenceFn<[Tensor, Tensor]>;
  next: InferenceFn<[Tensor, Tensor]>;
}
const compiledFor = new WeakMap<Gpt, Compiled>();

function compiled(model: Gpt): Compiled {
  let c = compiledFor.get(model);
  if (!c) {
    c = {
      // per-position sums of the token NLL over the batch: [L]
      nll: compileInference(
        model,
        (inputs: Tensor, targets: Tensor) =>
          E.sum(nextTokenLoss(model, model.hidden({ ids: inputs }), targets, { reduction: 'none' }), 0),
        'gpt_nll',
      ),
      // logits at one position: ids [B, L], pos int32 [1] → [B, V]
      next: compileInference(
        model,
        (ids: Tensor, pos: Tensor) => {
          const h = E.gather(model.hidden({ ids }), pos, 1);
          return E.reshape(model.logits(h), [ids.shape[0]!, model.cfg.vocabSize]);
        },
        'gpt_next',
      ),
    };
    compiledFor.set(model, c);
  }
  return c;
}

// ---- validation likelihood ----

export interface NllReport {
  /** Mean negative log-likelihood per token, in nats. */
  nll: number;
  /** The same in bits per token. */
  bits: number;
  /** exp(nll). */
  perplexity: number;
  /** Tokens scored. */
  tokens: number;
  /** Mean NLL (nats) at each position of the sequence (position 0 is predicted from BOS alone). */
  perPosition: number[];
}

/** Negative log-likelihood of every token of `seqs` under the model (teacher forcing, BOS prepended). */
export function evaluateNll(model: Gpt, seqs: TokenSequences, opts: { bos: number; batchSize?: number }): NllReport {
  checkIds(seqs, model, opts.bos);
  const B = Math.min(opts.batchSize ?? 64, seqs.count),
    L = seqs.length;
  const sums = new Float64Array(L);
  for (let start = 0; start < seqs.count; start += B) {
    // the last batch is padded with unscored rows, so one compiled shape serves every batch
    const rows = Array.from({ length: B }, (_, i) => (start + i < seqs.count ? start + i : -1));
    const b = nextTokenBatch(seqs, rows, opts.bos);
    const out = compiled(model).nll(b.inputs, b.targets) as Tensor;
    const v = out.data as Float32Array;
    for (let j = 0; j < L; j++) sums[j]! += v[j]!;
  }
  const total = sums.reduce((a, b) => a + b, 0);
  const tokens = seqs.count * L;
  const nll = total / tokens;
  return {
    nll,
    bits: nll / Math.LN2,
    perplexity: Math.exp(nll),
    tokens,
    perPosition: Array.from(sums, (s) => s / seqs.count),
  };
}

// ---- sampling ----

export interface SampleOptions {
  /** Sequences to generate. */
  count: number;
  /** Tokens to generate per sequence (after BOS and the prompt). */
  length: number;
  bos: number;
  /** Conditioning tokens after BOS, the same number for every sequence: row-major [count, promptLength]. */
  prompt?: { ids: ArrayLike<number>; length: number };
  /** Softmax temperature (default 1; 0 = greedy argmax). */
  temperature?: number;
  /** Keep only the k most likely tokens. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches p. */
  topP?: number;
  /** Ids never generated (e.g. BOS and other special tokens). */
  suppress?: number[];
  /** Host generator (default: the engine's default RNG). */
  rng?: Rng;
  /** Sequences run together (default 64). */
  batchSize?: number;
  /** Called after each generated position (for progress). */
  onStep?: (done: number, total: number) => void;
}

/**
 * Autoregressive sampling: each position runs the compiled forward on the whole (fixed-size) sequence buffer and
 * reads the logits of the current position only; positions not generated yet hold BOS and cannot influence it
 * through the causal mask. Returns the generated ids, row-major [count, length] (prompt not included).
 */
export function sample(model: Gpt, o: SampleOptions): Int32Array {
  const V = model.cfg.vocabSize;
  check(
    Number.isInteger(o.count) && o.count > 0 && Number.isInteger(o.length) && o.length > 0,
    `sample: need positive count and length, got ${o.count} × ${o.length}`,
  );
  check(
    Number.isInteger(o.bos) && o.bos >= 0 && o.bos < V,
    `sample: BOS id ${o.bos} is outside the vocabulary [0, ${V})`,
  );
  const P = o.prompt?.length ?? 0;
  if (o.prompt)
    check(
      o.prompt.ids.length === o.count * P,
      `sample: prompt has ${o.prompt.ids.length} ids, expected ${o.count} × ${P}`,
    );
  const L = P + o.length; // inputs: BOS, the prompt, and all but the last generated token
  check(
    L <= model.cfg.maxLength,
    `sample: BOS, ${P} prompt and ${o.length} generated ids need a maxLength ≥ ${L}, not ${model.cfg.maxLength}`,
  );
  const suppress = o.suppress ?? [];
  for (const s of suppress)
    check(Number.isInteger(s) && s >= 0 && s < V, `sample: suppressed id ${s} is outside the vocabulary`);
  check(suppress.length < V, 'sample: every token is suppressed');
  const rng = o.rng ?? defaultRng();
  const B = Math.min(o.batchSize ?? 64, o.count);
  const out = new Int32Array(o.count * o.length);
  const totalSteps = Math.ceil(o.count / B) * o.length;
  let done = 0;
  for (let start = 0; start < o.count; start += B) {
    const rows = Math.min(B, o.count - start);
    const buf = new Int32Array(B * L).fill(o.bos);
    if (o.prompt) {
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < P; j++) {
          const v = Number(o.prompt.ids[(start + r) * P + j]);
          check(Number.isInteger(v) && v >= 0 && v < V, `sample: prompt token ${v} is outside the vocabulary`);
          buf[r * L + 1 + j] = v;
        }
      }
    }
    for (let pos = P; pos < L; pos++) {
      const logits = compiled(model).next(
        E.concrete(buf, [B, L], 'int32'),
        E.concrete(Int32Array.of(pos), [1], 'int32'),
      ) as Tensor;
      const lg = Float32Array.from(logits.data as Float32Array);
      const next = sampleRows(suppressIds(lg.subarray(0, rows * V), V, suppress), rows, V, rng, o);
      for (let r = 0; r < rows; r++) {
        out[(start + r) * o.length + (pos - P)] = next[r]!;
        if (pos + 1 < L) buf[r * L + pos + 1] = next[r]!;
      }
      o.onStep?.(++done, totalSteps);
    }
  }
  return out;
}
