import { check } from '../util/errors.js';

/**
 * Compression and codebook statistics of token streams.
 *
 * Bits per pixel counts every token at the fixed code length ceil(log2 vocab) (what a .vtok file stores),
 * spread over all pixels of the frames it encodes (T·H·W — colour channels are not counted separately, as in
 * the tokenizer literature). entropyBitsPerPixel uses the empirical entropy instead: what an ideal entropy
 * coder would need given the observed token frequencies.
 */
export function bitsPerPixel(
  numTokens: number,
  vocabSize: number,
  frames: number,
  height: number,
  width: number,
): number {
  check(vocabSize >= 2 && frames * height * width > 0, 'bitsPerPixel: need vocabSize ≥ 2 and a non-empty frame size');
  return (numTokens * Math.ceil(Math.log2(vocabSize))) / (frames * height * width);
}

export interface CodebookUsage {
  vocabSize: number;
  tokens: number;
  /** Codes used at least once. */
  used: number;
  /** used / vocabSize. */
  usage: number;
  /** Shannon entropy of the code frequencies, in bits. */
  entropyBits: number;
  /** exp(entropy): the effective number of equally used codes. */
  perplexity: number;
  counts: Uint32Array;
}

/** Counts codes across one or more token arrays. */
export function codebookUsage(tokens: ArrayLike<number> | ArrayLike<number>[], vocabSize: number): CodebookUsage {
  check(Number.isInteger(vocabSize) && vocabSize >= 1, `vocabSize must be a positive integer, got ${vocabSize}`);
  const counts = new Uint32Array(vocabSize);
  let total = 0;
  const parts =
    Array.isArray(tokens) && tokens.length > 0 && typeof tokens[0] !== 'number'
      ? (tokens as ArrayLike<number>[])
      : [tokens as ArrayLike<number>];
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      const id = part[i]!;
      check(
        Number.isInteger(id) && id >= 0 && id < vocabSize,
        `token ${id} is outside the vocabulary [0, ${vocabSize})`,
      );
      counts[id]!++;
      total++;
    }
  }
  check(total > 0, 'codebookUsage: no tokens');
  let used = 0;
  let h = 0;
  for (const c of counts) {
    if (!c) continue;
    used++;
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return { vocabSize, tokens: total, used, usage: used / vocabSize, entropyBits: h, perplexity: 2 ** h, counts };
}

/** Entropy-coded bits per pixel: tokens · entropy / pixels. */
export function entropyBitsPerPixel(usage: CodebookUsage, pixels: number): number {
  return (usage.tokens * usage.entropyBits) / pixels;
}
