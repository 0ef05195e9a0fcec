import * as E from '../../engine/index.js';
import { Module } from '../../nn/index.js';
import { check } from '../../util/errors.js';
import type { TextInput } from '../sampler.js';
import { BuiltinTextEncoder, type BuiltinTextEncoderConfig } from '../text/builtin.js';
import type { TextTokens } from '../text/encoder.js';
import { PrefixLm, type PrefixLmConfig } from './model.js';

/**
 * The prefix LM together with the built-in text encoder that trains with it (VideoPoet §2: text enters as
 * embeddings, never as ids). One Module, so one training step updates both and one checkpoint holds both
 * (`lm.*`, `text.*`).
 */
export interface TextPrefixLmConfig {
  lm: PrefixLmConfig;
  /** The built-in encoder, or null for a model without text. */
  text: BuiltinTextEncoderConfig | null;
}

export class TextPrefixLm extends Module {
  lm: PrefixLm;
  text: BuiltinTextEncoder | null;

  constructor(readonly config: TextPrefixLmConfig) {
    super();
    check((config.text?.dim ?? null) === config.lm.textDim, `text encoder width ${config.text?.dim ?? 'none'} must equal the LM's textDim ${config.lm.textDim}`);
    this.lm = new PrefixLm(config.lm);
    this.text = config.text ? new BuiltinTextEncoder(config.text) : null;
  }

  /** Tokenizes prompts (a clear error names a prompt longer than the encoder's limit). */
  tokenize(prompts: string[]): TextTokens {
    check(this.text !== null, 'this model takes no text prompt');
    return this.text!.tokenize(prompts);
  }

  /** Encoder embeddings per prompt, as the sampler takes them (run eagerly: prompts are short). */
  embed(tokens: TextTokens): TextInput[] {
    const enc = this.text!;
    const wasTraining = enc.training;
    enc.eval();
    try {
      const { ids, valid } = enc.inputs(tokens);
      const h = E.toArray(enc.forward(ids, valid));
      const per = tokens.maxTokens * enc.dim;
      return Array.from({ length: tokens.count }, (_, i) => ({
        embeddings: Float32Array.from(h.slice(i * per, (i + 1) * per)),
        valid: (valid.data as Uint8Array).slice(i * tokens.maxTokens, (i + 1) * tokens.maxTokens),
      }));
    } finally {
      enc.train(wasTraining);
    }
  }
}
