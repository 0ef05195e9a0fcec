import { existsSync, readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { VtokError, check } from '../../util/errors.js';
import type { TextTokens } from './encoder.js';

/**
 * Text → ids for the text encoders: bytes (the built-in encoder's offline default) or a Hugging Face
 * `tokenizer.json` (what exported T5-style encoders come with) read by the maintained tokenizers.js library.
 * Both give [count, maxTokens] ids padded with 0 and refuse a prompt longer than maxTokens, naming it.
 */

const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);

function pack(rows: number[][], texts: string[], maxTokens: number, unit: string): TextTokens {
  check(Number.isInteger(maxTokens) && maxTokens > 0, `maxTokens must be a positive integer, got ${maxTokens}`);
  const ids = new Int32Array(rows.length * maxTokens);
  const lengths = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    if (r.length > maxTokens)
      throw new VtokError(
        `the prompt ${quote(texts[i]!)} is ${r.length} ${unit} long; the text encoder takes at most ${maxTokens}`,
      );
    ids.set(r, i * maxTokens);
    lengths[i] = r.length;
  });
  return { ids, lengths, count: rows.length, maxTokens };
}

/** UTF-8 bytes as ids 1..256 (0 = padding). */
export function byteTokenize(texts: string[], maxTokens: number): TextTokens {
  return pack(
    texts.map((t) => Array.from(Buffer.from(t, 'utf8'), (b) => b + 1)),
    texts,
    maxTokens,
    'bytes',
  );
}

/** A tokenizer from a Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram, … with their special tokens). */
export class JsonTokenizer {
  private constructor(
    private readonly tok: HfTokenizer,
    readonly path: string,
    readonly vocabSize: number,
  ) {}

  static load(path: string): JsonTokenizer {
    if (!existsSync(path)) throw new VtokError('no such tokenizer file', path);
    let json: { model?: { vocab?: unknown }; added_tokens?: unknown[] };
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      throw new VtokError('not a tokenizer.json (invalid JSON)', path);
    }
    if (!json || typeof json !== 'object' || !json.model || typeof json.model !== 'object')
      throw new VtokError('not a tokenizer.json (no "model" section)', path);
    let tok: HfTokenizer;
    try {
      tok = new HfTokenizer(json, {});
    } catch (e) {
      throw new VtokError(`tokenizer.json cannot be read: ${(e as Error).message}`, path);
    }
    const vocab = json.model.vocab;
    const size = Array.isArray(vocab)
      ? vocab.length
      : vocab && typeof vocab === 'object'
        ? Object.keys(vocab).length
        : 0;
    return new JsonTokenizer(tok, path, size);
  }

  /** Ids of each text with the tokenizer's special tokens (e.g. T5's closing </s>). */
  encode(text: string): number[] {
    return this.tok.encode(text).ids;
  }

  tokenize(texts: string[], maxTokens: number): TextTokens {
    return pack(
      texts.map((t) => this.encode(t)),
      texts,
      maxTokens,
      'tokens',
    );
  }
}
