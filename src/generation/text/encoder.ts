/**
 * The text side of the prefix LM (VideoPoet §2): text is never output ids; an encoder turns a prompt into a
 * sequence of embeddings that the LM projects into its width and places in the sequence's text slot.
 */

/** Tokenized prompts: ids [count, maxTokens] row-major, padded with 0; lengths [count]. */
export interface TextTokens {
  ids: Int32Array;
  lengths: Int32Array;
  count: number;
  maxTokens: number;
} // [count, maxTokens], padded with 0
export interface TextEncoderInfo {
  kind: string;
  dim: number;
  maxTokens: number;
}
export interface TextEncoder extends TextEncoderInfo {
  tokenize(texts: string[]): TextTokens; // VtokError naming the prompt when it is longer than maxTokens
}
/** Frozen, from files: an ONNX encoder run by onnxruntime on the host; its output is fed to the LM. */
export interface FrozenTextEncoder extends TextEncoder {
  embed(tokens: TextTokens): Float32Array; // [count, maxTokens, dim]
  /** SHA-256 of its files (model and tokenizer), which a model trained on its output records. */
  readonly sha256?: string;
}
