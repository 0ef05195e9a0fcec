import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { VtokError, check } from '../util/errors.js';
import { constant, normal } from './init.js';
import { Embedding, LayerNorm, Linear, RMSNorm } from './layers.js';
import { Module, Param } from './module.js';
import {
  andMasks,
  keyPaddingMask,
  prefixLmMask,
  rotaryTables,
  TransformerBlock,
  type BlockConfig,
  type KvCache,
  type Mask,
  type MlpConfig,
  type MultiHeadAttention,
  type Mlp,
  type ProjectionRole,
} from './transformer.js';

/**
 * The one decoder-only language-model shell. Every autoregressive transformer in vtok is a `DecoderLm`: the
 * VideoPoet prefix LM, LARP's GPTC prior, the GPT of the LARP study, and later imported AR models (LARP's own).
 *
 *   ids ─ token embedding (or vectors ─ a Linear with bias: GPTC's continuous codes)
 *     [class conditioning: the class's embedding in front, at position 0]
 *     [text conditioning: text embeddings ─ a Linear with bias ─ in a slot of the sequence]
 *     [+ learned absolute positions] ─ dropout
 *   ─ blocks (nn/transformer TransformerBlock: pre-norm; causal or prefix-LM mask; rotary when positions are rotary)
 *   ─ final norm ─ head (a Linear, or the token embedding tied) → logits over the vocabulary (or vectors)
 *
 * Parameter names are options (`names`, `blockNames`), so each model keeps the names its reference or its shipped
 * checkpoints use: the prefix LM `tok_emb … lm_head`, GPTC `input_proj … ln_f/head`, the GPT nanoGPT's `wte … h.N`,
 * a Llama-style model `tok_embeddings/layers/attention.wqkv/feed_forward.w1…`. The parts are built in the order
 * embedding, class, text, positions, blocks, norm, head, which is also the order of the state dict.
 *
 * The next-token cross-entropy is `nextTokenLoss` (nn/lm-loss.ts).
 */
export interface DecoderLmNames {
  /** Token embedding or vector projection (default `tok_emb`). */
  embedding?: string;
  /** Class embedding (default `cls_emb`). */
  classes?: string;
  /** Text projection (default `text_proj`). */
  text?: string;
  /** Learned positions (default `pos_emb`). */
  positions?: string;
  /** The list of blocks (default `blocks`). */
  blocks?: string;
  /** Final norm (default `norm`). */
  norm?: string;
  /** Head (default `lm_head`). */
  head?: string;
}

/** Names inside each block. */
export interface DecoderBlockNames {
  /** Parameter name → part, in declaration order (default `attn_norm`, `attn`, `mlp_norm`, `mlp`). */
  parts?: BlockConfig['names'];
  /** Attention projections: name → role (default `wq`, `wk`, `wv`, `wo`; `{ wqkv: 'qkv', wo: 'o' }` is fused). */
  projections?: Record<string, ProjectionRole>;
  /** MLP linears (default `w1`/`w3`/`w2` for SwiGLU, `fc1`/`fc2` for GELU). */
  mlp?: MlpConfig['names'];
}

export interface DecoderLmConfig {
  /** Token ids in, logits over them out: the vocabulary size. Exactly one of vocabSize and vectorDim. */
  vocabSize?: number | null;
  /** Continuous vectors in (projected by a Linear with bias) and vectors out: their width. */
  vectorDim?: number | null;
  /**
   * Rows of the token embedding (default vocabSize): more when the input holds ids the head never predicts, e.g.
   * LARP's frame-prediction separator (its embedding has vocab + 1 rows, its head vocab).
   */
  inputVocabSize?: number | null;
  dim: number;
  layers: number;
  heads: number;
  /** MLP hidden width. */
  hidden: number;
  /** Longest sequence (class position included): learned positions' rows; checked on input. */
  maxLength: number;
  /** 'causal' (default), or 'prefix': bidirectional over the first prefixLength[b] positions of row b, then causal. */
  mask?: 'causal' | 'prefix';
  /** 'rotary' (default), 'learned' absolute positions, or 'none'. */
  positions?: 'rotary' | 'learned' | 'none';
  /**
   * How learned positions are held: an Embedding [maxLength, dim] (default), or one parameter [1, maxLength, dim]
   * initialised N(0, 0.02) (minGPT's layout, LARP's GPTC).
   */
  positionTable?: 'embedding' | 'parameter';
  ropeBase?: number;
  /** 'rms' (default) or 'layer'. */
  norm?: 'rms' | 'layer';
  normEps?: number;
  /** 'swiglu' (default) or 'gelu'. */
  mlp?: 'swiglu' | 'gelu';
  /** Biases in the blocks' linear layers (default false). */
  bias?: boolean;
  /** A bias on the head (default false). */
  headBias?: boolean;
  /** The head is the token embedding (default false: its own Linear). */
  tied?: boolean;
  /** Dropout on the embeddings and on each residual branch while training (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities while training (default 0). */
  attnDropout?: number;
  /** Text conditioning: the width of the text embeddings fed at the text slot (default null: none). */
  textDim?: number | null;
  /**
   * Class conditioning: the number of classes (default null: none). The class embedding has one more row, the null
   * class (id = classes), for classifier-free guidance; the class's embedding is position 0 of the sequence.
   */
  classes?: number | null;
  names?: DecoderLmNames;
  blockNames?: DecoderBlockNames;
}

type Nullable = 'vocabSize' | 'vectorDim' | 'inputVocabSize' | 'textDim' | 'classes';
export type ResolvedDecoderLmConfig = Required<Omit<DecoderLmConfig, Nullable | 'names' | 'blockNames'>> & {
  [K in Nullable]: number | null;
} & { names: Required<DecoderLmNames>; blockNames: DecoderBlockNames };

const DEFAULT_NAMES: Required<DecoderLmNames> = {
  embedding: 'tok_emb',
  classes: 'cls_emb',
  text: 'text_proj',
  positions: 'pos_emb',
  blocks: 'blocks',
  norm: 'norm',
  head: 'lm_head',
};

/** Checks a config and fills in its defaults; every bad field is named. */
export function decoderLmConfig(c: DecoderLmConfig): ResolvedDecoderLmConfig {
  const bad = (msg: string) => new VtokError(`decoder LM config: ${msg}`);
  const positive = (k: string, v: unknown) => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v > 0)) {
      throw bad(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  };
  for (const k of ['dim', 'layers', 'heads', 'hidden', 'maxLength'] as const) positive(k, c[k]);
  const vocabSize = c.vocabSize ?? null,
    vectorDim = c.vectorDim ?? null;
  if ((vocabSize === null) === (vectorDim === null)) {
    throw bad('give exactly one of vocabSize (token ids) and vectorDim (vectors)');
  }
  for (const k of ['vocabSize', 'vectorDim', 'inputVocabSize', 'textDim', 'classes'] as const) {
    if (c[k] != null) positive(k, c[k]);
  }
  const inputVocabSize = c.inputVocabSize ?? vocabSize;
  if (c.inputVocabSize != null && (vocabSize === null || c.inputVocabSize < vocabSize)) {
    throw bad(`inputVocabSize ${c.inputVocabSize} needs token ids and at least vocabSize ${vocabSize} rows`);
  }
  if (c.dim % c.heads !== 0) throw bad(`dim ${c.dim} is not divisible by ${c.heads} heads`);
  const positions = c.positions ?? 'rotary';
  if (positions === 'rotary' && (c.dim / c.heads) % 2 !== 0) {
    throw bad(`rotary positions need an even head width, got ${c.dim / c.heads}`);
  }
  if (c.tied && vocabSize === null) throw bad('a tied head needs a token embedding (vocabSize)');
  if (c.tied && inputVocabSize !== vocabSize) throw bad('a tied head needs inputVocabSize = vocabSize');
  if (c.textDim != null && c.classes != null) throw bad('text and class conditioning do not combine');
  const dropout = c.dropout ?? 0,
    attnDropout = c.attnDropout ?? 0;
  for (const [k, v] of [
    ['dropout', dropout],
    ['attnDropout', attnDropout],
  ] as const) {
    if (!(v >= 0 && v < 1)) throw bad(`${k} must be in [0, 1), got ${v}`);
  }
  const norm = c.norm ?? 'rms';
  return {
    vocabSize,
    vectorDim,
    inputVocabSize,
    dim: c.dim,
    layers: c.layers,
    heads: c.heads,
    hidden: c.hidden,
    maxLength: c.maxLength,
    mask: c.mask ?? 'causal',
    positions,
    positionTable: c.positionTable ?? 'embedding',
    ropeBase: c.ropeBase ?? 10000,
    norm,
    normEps: c.normEps ?? (norm === 'layer' ? 1e-5 : 1e-6),
    mlp: c.mlp ?? 'swiglu',
    bias: c.bias ?? false,
    headBias: c.headBias ?? false,
    tied: c.tied ?? false,
    dropout,
    attnDropout,
    textDim: c.textDim ?? null,
    classes: c.classes ?? null,
    names: { ...DEFAULT_NAMES, ...c.names },
    blockNames: c.blockNames ?? {},
  };
}

/** The model's input. Text and class conditioning only where the config has them. */
export interface DecoderLmInput {
  /** Token ids [B, S] (int32 or int64), for a model with a vocabulary… */
  ids?: Tensor;
  /** …or vectors [B, S, vectorDim]. */
  vectors?: Tensor;
  /** The prefix-LM mask's P_b per row, int [B]: positions < P_b form the bidirectional prefix. */
  prefixLength?: Tensor;
  /** Text embeddings [B, Lt, textDim], placed at positions textStart … textStart+Lt−1. */
  text?: Tensor;
  textStart?: number;
  /** Which text positions hold a token, bool [B, Lt]; the others are hidden from every query. */
  textValid?: Tensor;
  /** Class ids, int [B] (`classes` = the null class). */
  classIds?: Tensor;
}

/** Run options: positions (int [T], default 0…T−1), the mask, and per-layer KV-cache hooks. */
export interface DecoderRunOptions {
  positions?: Tensor;
  mask: Mask;
  cache?: (layer: number) => KvCache;
}

export interface DecoderLmParts {
  embedding: Embedding | Linear;
  classes: Embedding | null;
  text: Linear | null;
  positions: Embedding | Param | null;
  blocks: TransformerBlock[];
  norm: RMSNorm | LayerNorm;
  /** null: tied to the token embedding. */
  head: Linear | null;
}

export class DecoderLm extends Module {
  readonly cfg: ResolvedDecoderLmConfig;
  /** The parts by role (the same objects as the named fields). */
  readonly parts: DecoderLmParts;

  constructor(config: DecoderLmConfig) {
    super();
    this.cfg = decoderLmConfig(config);
    const c = this.cfg;
    const d = c.dim,
      bn = c.blockNames;
    const embedding = c.inputVocabSize !== null ? new Embedding(c.inputVocabSize, d) : new Linear(c.vectorDim!, d);
    const classes = c.classes === null ? null : new Embedding(c.classes + 1, d);
    const text = c.textDim === null ? null : new Linear(c.textDim, d);
    const positions =
      c.positions !== 'learned'
        ? null
        : c.positionTable === 'embedding'
          ? new Embedding(c.maxLength, d)
          : new Param(normal([1, c.maxLength, d], 0.02));
    const blocks = Array.from(
      { length: c.layers },
      () =>
        new TransformerBlock({
          dim: d,
          heads: c.heads,
          norm: c.norm,
          normEps: c.normEps,
          dropout: c.dropout,
          names: bn.parts ?? { attn_norm: 'norm1', attn: 'attn', mlp_norm: 'norm2', mlp: 'mlp' },
          attention: {
            projections: bn.projections ?? { wq: 'q', wk: 'k', wv: 'v', wo: 'o' },
            qkvBias: c.bias,
            outBias: c.bias,
            attnDropout: c.attnDropout,
          },
          mlp: { kind: c.mlp, hidden: c.hidden, bias: c.bias, names: bn.mlp },
        }),
    );
    const norm = c.norm === 'rms' ? new RMSNorm(d, c.normEps) : new LayerNorm(d, c.normEps);
    const head = c.tied ? null : new Linear(d, c.vocabSize ?? c.vectorDim!, { bias: c.headBias });
    this.parts = { embedding, classes, text, positions, blocks, norm, head };
    const n = c.names;
    const named: [string, unknown][] = [
      [n.embedding, embedding],
      [n.classes, classes],
      [n.text, text],
      [n.positions, positions],
      [n.blocks, blocks],
      [n.norm, norm],
      [n.head, head],
    ];
    for (const [name, part] of named) {
      if (part === null) continue;
      // a name that is already a field or method (or another part's) would shadow it
      if (name in this) throw new VtokError(`decoder LM config: the name "${name}" is taken`);
      (this as unknown as Record<string, unknown>)[name] = part;
    }
  }

  get headDim(): number {
    return this.cfg.dim / this.cfg.heads;
  }

  /** The head's weight [out, dim]: its own, or the token embedding's when tied. */
  get headWeight(): Param {
    return (this.parts.head ?? this.parts.embedding).weight;
  }

  /** Sequence length of an input, the class position included. */
  length(x: DecoderLmInput): number {
    const tokens = this.cfg.vocabSize !== null,
      main = tokens ? x.ids : x.vectors;
    if (!main) throw new VtokError(`decoder LM: this model reads ${tokens ? 'token ids' : 'vectors'}`);
    return main.shape[1]! + (this.parts.classes ? 1 : 0);
  }

  /** Input embeddings [B, S, dim]: tokens or vectors, the projected text in its slot, the class in front. */
  embed(x: DecoderLmInput): Tensor {
    const c = this.cfg,
      p = this.parts;
    let h: Tensor;
    if (c.vocabSize !== null) {
      const ids = x.ids;
      if (ids?.rank !== 2) {
        throw new VtokError(`decoder LM: expected ids [batch, positions], got ${ids ? `[${ids.shape}]` : 'none'}`);
      }
      h = this.tokenEmbeddings(ids);
    } else {
      const v = x.vectors;
      if (v?.rank !== 3 || v.shape[2] !== c.vectorDim) {
        const got = v ? `[${v.shape}]` : 'none';
        throw new VtokError(`decoder LM: expected vectors [batch, positions, ${c.vectorDim}], got ${got}`);
      }
      h = p.embedding.forward(v);
    }
    if (x.text) h = this.withText(h, x.text, x.textStart ?? 0);
    if (x.classIds) {
      if (!p.classes) throw new VtokError('decoder LM: this model has no class input but class ids were given');
      const B = h.shape[0]!;
      check(x.classIds.shape.join() === String(B), `decoder LM: class ids must be [${B}], got [${x.classIds.shape}]`);
      h = E.concat([E.reshape(p.classes.forward(x.classIds), [B, 1, c.dim]), h], 1);
    } else if (p.classes) throw new VtokError('decoder LM: this model is class-conditioned: give class ids');
    return h;
  }

  /**
   * The token embeddings of ids [B, S] alone, without the class or text a sequence starts with: what a KV-cache
   * decode step feeds after its prefill.
   */
  tokenEmbeddings(ids: Tensor): Tensor {
    if (this.cfg.vocabSize === null) throw new VtokError('decoder LM: this model reads vectors, not token ids');
    if (ids.dtype !== 'int32' && ids.dtype !== 'int64') {
      throw new VtokError(`decoder LM: token ids must be int32 or int64, got ${ids.dtype}`);
    }
    return (this.parts.embedding as Embedding).forward(ids);
  }

  private withText(tok: Tensor, text: Tensor, start: number): Tensor {
    const proj = this.parts.text;
    if (!proj) throw new VtokError('decoder LM: this model has no text input (textDim null) but text was given');
    const [B, S] = tok.shape as [number, number],
      [tb, lt, td] = text.shape as [number, number, number];
    check(
      tb === B && td === this.cfg.textDim,
      `decoder LM: text embeddings [${text.shape}] must be [${B}, L, ${this.cfg.textDim}]`,
    );
    check(
      start >= 0 && start + lt <= S,
      `decoder LM: the text slot ${start}…${start + lt - 1} does not fit ${S} positions`,
    );
    const parts = [E.narrow(tok, 1, 0, start), proj.forward(text), E.narrow(tok, 1, start + lt, S - start - lt)];
    return E.concat(
      parts.filter((q) => q.shape[1]! > 0),
      1,
    );
  }

  /** Which keys are real (false at invalid text positions), bool [B, S], or null when all are. */
  keyValid(x: DecoderLmInput, S: number): Tensor | null {
    if (!x.text || !x.textValid) return null;
    const B = x.text.shape[0]!,
      start = x.textStart ?? 0,
      lt = x.text.shape[1]!;
    const ones = (n: number) => E.cast(E.full([B, n], 1, 'uint8'), 'bool');
    return E.concat(
      [ones(start), x.textValid, ones(S - start - lt)].filter((q) => q.shape[1]! > 0),
      1,
    );
  }

  /** The blocks over embeddings h [B, T, dim] (learned positions added, then dropout); the final-normed states. */
  run(h: Tensor, o: DecoderRunOptions): Tensor {
    const c = this.cfg,
      T = h.shape[1]!;
    let pos = o.positions;
    const positions = () => (pos ??= E.arange(0, T, 1, 'int64'));
    const rope = c.positions === 'rotary' ? rotaryTables(positions(), this.headDim, c.ropeBase) : undefined;
    const table = this.parts.positions;
    if (table instanceof Embedding) h = E.add(h, table.forward(positions()));
    else if (table) {
      const rows = o.positions
        ? E.embedding(E.reshape(table.value, [c.maxLength, c.dim]), o.positions)
        : E.narrow(table.value, 1, 0, T);
      h = E.add(h, rows);
    }
    h = E.dropout(h, c.dropout, this.training);
    this.parts.blocks.forEach((blk, l) => {
      h = blk.forward(h, { mask: o.mask, rope, cache: o.cache?.(l) });
    });
    return this.parts.norm.forward(h);
  }

  /** Final hidden states [B, S, dim] under the config's mask (and the text key padding). */
  hidden(x: DecoderLmInput): Tensor {
    const c = this.cfg,
      S = this.length(x);
    check(S <= c.maxLength, `decoder LM: ${S} positions exceed the model's maxLength ${c.maxLength}`);
    const valid = this.keyValid(x, S);
    let mask: Mask = 'causal';
    if (c.mask === 'prefix') {
      const B = (c.vocabSize !== null ? x.ids : x.vectors)!.shape[0];
      if (!x.prefixLength) throw new VtokError('decoder LM: a prefix LM needs prefixLength');
      check(
        x.prefixLength.shape.join() === String(B),
        `decoder LM: prefixLength must be [${B}], got [${x.prefixLength.shape}]`,
      );
      mask = prefixLmMask(x.prefixLength, S);
    }
    if (valid) mask = andMasks([mask, keyPaddingMask(valid)], S, S);
    return this.run(this.embed(x), { mask });
  }

  /** Hidden states […, dim] → logits […, vocabSize] (or vectors […, vectorDim]). */
  logits(h: Tensor): Tensor {
    return this.parts.head ? this.parts.head.forward(h) : E.linear(h, this.parts.embedding.weight.value);
  }

  /** Logits [B, S, vocabSize] (or vectors [B, S, vectorDim]). */
  forward(x: DecoderLmInput): Tensor {
    return this.logits(this.hidden(x));
  }

  /**
   * GPT-2's initialisation: N(0, std) weights of every Linear and Embedding, zero biases, and N(0, residualStd) for
   * the projections that end a residual branch (attention output, MLP output).
   */
  initNormal(std: number, residualStd = std): void {
    const residual = new Set<Module>(
      this.parts.blocks.flatMap((b) => [
        b.part<MultiHeadAttention>('attn').projection('o'),
        b.part<Mlp>('mlp').projection('out'),
      ]),
    );
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear || m instanceof Embedding) {
        m.weight.value = normal(m.weight.shape, residual.has(m) ? residualStd : std);
      }
      if (m instanceof Linear && m.bias) m.bias.value = constant(m.bias.shape, 0);
    }
  }
}
