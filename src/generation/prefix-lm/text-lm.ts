import * as E from '../../engine/core.js';
import { Module } from '../../nn/index.js';
import { VtokError, check } from '../../util/errors.js';
import type { TextInput } from '../sampler.js';
import { BuiltinTextEncoder, type BuiltinTextEncoderConfig } from '../text/builtin.js';
import type { FrozenTextEncoder, TextTokens } from '../text/encoder.js';
import { PrefixLm, type PrefixLmConfig } from './model.js';

/**
 * The prefix LM together with its text encoder (VideoPoet §2: text enters as embeddings, never as ids). The
 * built-in encoder is a submodule, so one training step updates both and one checkpoint holds both (`lm.*`,
 * `text.*`); a frozen ONNX encoder (e.g. an exported T5) lives in its own folder and is only run.
 */
export interface OnnxTextRef {
  kind: 'onnx';
  /** The encoder's folder (text-encoder.json, model, tokenizer.json), relative to the model directory or absolute. */
  dir: string;
  dim: number;
  maxTokens: number;
  /**
   * SHA-256 of the encoder's files (its model and tokenizer.json) the LM was trained with: other files are refused,
   * as another visual tokenizer is. Absent in configs of older versions (then unchecked).
   */
  sha256?: string;
}

export interface TextPrefixLmConfig {
  lm: PrefixLmConfig;
  /** The built-in encoder, a frozen ONNX one, or null for a model without text. */
  text: BuiltinTextEncoderConfig | OnnxTextRef | null;
}

export const isOnnxText = (t: TextPrefixLmConfig['text']): t is OnnxTextRef =>
  (t as OnnxTextRef | null)?.kind === 'onnx';

/**
 * Refuses a frozen text encoder whose files are not those the model was trained with (its embeddings would be
 * another's), naming both digests: the text side's version of the tokenizer identity check.
 */
export function checkTextEncoder(ref: OnnxTextRef, frozen: FrozenTextEncoder, source?: string): void {
  if (ref.sha256 === undefined || frozen.sha256 === ref.sha256) return;
  const short = (h: string | undefined) => (h ? h.slice(0, 16) : 'unknown');
  throw new VtokError(
    `text encoder mismatch: the model was trained with text encoder files of sha256 ${short(ref.sha256)} but got ` +
      `${short(frozen.sha256)} (another model or tokenizer.json)`,
    source,
  );
}

export class TextPrefixLm extends Module {
  lm: PrefixLm;
  text: BuiltinTextEncoder | null;
  /** The frozen encoder (not a submodule: its weights are not trained or checkpointed). */
  readonly frozen: FrozenTextEncoder | null;

  constructor(
    readonly config: TextPrefixLmConfig,
    /** `source`: where the encoder was loaded from, named in errors. */
    opts: { frozen?: FrozenTextEncoder; source?: string } = {},
  ) {
    super();
    const t = config.text;
    check(
      (t?.dim ?? null) === config.lm.textDim,
      `text encoder width ${t?.dim ?? 'none'} must equal the LM's textDim ${config.lm.textDim}`,
    );
    this.lm = new PrefixLm(config.lm);
    if (isOnnxText(t)) {
      const f = opts.frozen;
      check(f !== undefined, 'a model with an ONNX text encoder needs the loaded encoder');
      check(
        f!.dim === t.dim && f!.maxTokens === t.maxTokens,
        `the ONNX text encoder gives ${f!.maxTokens} × ${f!.dim}, the model was built for ${t.maxTokens} × ${t.dim}`,
      );
      checkTextEncoder(t, f!, opts.source);
    }
    this.frozen = isOnnxText(t) ? opts.frozen! : null;
    this.text = t && !isOnnxText(t) ? new BuiltinTextEncoder(t) : null;
  }

  get hasText(): boolean {
    return this.text !== null || this.frozen !== null;
  }

  /** Tokenizes prompts (a clear error names a prompt longer than the encoder's limit). */
  tokenize(prompts: string[]): TextTokens {
    check(this.hasText, 'this model takes no text prompt');
    return (this.text ?? this.frozen)!.tokenize(prompts);
  }

  /** Encoder embeddings per prompt, as the sampler takes them (the built-in one runs eagerly: prompts are short). */
  embed(tokens: TextTokens): TextInput[] {
    const L = tokens.maxTokens;
    const valid = new Uint8Array(tokens.count * L);
    for (let i = 0; i < tokens.count; i++) valid.fill(1, i * L, i * L + tokens.lengths[i]!);
    let h: Float32Array, dim: number;
    if (this.frozen) {
      h = this.frozen.embed(tokens);
      dim = this.frozen.dim;
    } else {
      const enc = this.text!;
      const wasTraining = enc.training;
      enc.eval();
      try {
        const x = enc.inputs(tokens);
        h = Float32Array.from(E.toArray(enc.forward(x.ids, x.valid)));
        dim = enc.dim;
      } finally {
        enc.train(wasTraining);
      }
    }
    const per = L * dim;
    return Array.from({ length: tokens.count }, (_, i) => ({
      embeddings: h.slice(i * per, (i + 1) * per),
      valid: valid.slice(i * L, (i + 1) * L),
    }));
  }
}
