import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import {
  andMasks,
  Embedding,
  keyPaddingMask,
  LayerNorm,
  Module,
  rotaryTables,
  TransformerBlock,
} from '../../nn/index.js';
import { check } from '../../util/errors.js';
import { byteTokenize } from './tokenize.js';
import type { TextEncoder, TextTokens } from './encoder.js';

/** A text encoder whose weights train with the LM: its forward is part of the LM's training graph. */
export interface TrainableTextEncoder extends TextEncoder {
  readonly module: Module;
  forward(ids: Tensor /*[B,L] int*/, valid: Tensor /*[B,L] bool*/): Tensor /*[B,L,dim]*/;
}

export interface BuiltinTextEncoderConfig {
  dim: number;
  layers: number;
  heads: number;
  /** Longest prompt in bytes. */
  maxTokens: number;
}

/** UTF-8 bytes as ids 1..256 (0 = padding). */
const BYTE_VOCAB = 257;

/**
 * The built-in, offline text encoder: a small bidirectional transformer over the prompt's bytes (pre-LN, rotary,
 * GELU MLP), trained together with the LM. Padding keys are hidden; its output feeds the LM's text_proj.
 */
export class BuiltinTextEncoder extends Module implements TrainableTextEncoder {
  readonly kind = 'builtin-bytes';
  readonly dim: number;
  readonly maxTokens: number;
  tok_emb: Embedding;
  blocks: TransformerBlock[];
  norm: LayerNorm;

  constructor(readonly cfg: BuiltinTextEncoderConfig) {
    super();
    check(
      cfg.dim % cfg.heads === 0 && (cfg.dim / cfg.heads) % 2 === 0,
      `text encoder: dim ${cfg.dim} must split into ${cfg.heads} heads of even width`,
    );
    check(
      Number.isInteger(cfg.maxTokens) && cfg.maxTokens > 0,
      `text encoder: maxTokens must be a positive integer, got ${cfg.maxTokens}`,
    );
    this.dim = cfg.dim;
    this.maxTokens = cfg.maxTokens;
    this.tok_emb = new Embedding(BYTE_VOCAB, cfg.dim);
    this.blocks = Array.from(
      { length: cfg.layers },
      () =>
        new TransformerBlock({
          dim: cfg.dim,
          heads: cfg.heads,
          norm: 'layer',
          mlp: { kind: 'gelu', hidden: 4 * cfg.dim },
        }),
    );
    this.norm = new LayerNorm(cfg.dim);
  }

  get module(): Module {
    return this;
  }

  tokenize(texts: string[]): TextTokens {
    return byteTokenize(texts, this.maxTokens);
  }

  /** Host tokens → the forward's inputs: ids int32 [B, L] and valid bool [B, L]. */
  inputs(t: TextTokens): { ids: Tensor; valid: Tensor } {
    const valid = new Uint8Array(t.count * t.maxTokens);
    for (let i = 0; i < t.count; i++) valid.fill(1, i * t.maxTokens, i * t.maxTokens + t.lengths[i]!);
    return {
      ids: E.concrete(t.ids, [t.count, t.maxTokens], 'int32'),
      valid: E.concrete(valid, [t.count, t.maxTokens], 'bool'),
    };
  }

  forward(ids: Tensor, valid: Tensor): Tensor {
    const L = ids.shape[1]!;
    check(L <= this.maxTokens, `text encoder: ${L} tokens exceed maxTokens ${this.maxTokens}`);
    const rope = rotaryTables(E.arange(0, L, 1, 'int64'), this.dim / this.cfg.heads);
    const mask = andMasks([keyPaddingMask(valid)], L, L);
    let h = this.tok_emb.forward(ids);
    for (const blk of this.blocks) h = blk.forward(h, { mask, rope });
    return this.norm.forward(h);
  }
}
