import * as E from '../engine/core.js';
import type { Precision, Tensor } from '../engine/core.js';
import { VtokError } from '../util/errors.js';

/**
 * The one face every tokenizer (MAGVIT-v2, LARP, later SoundStream) presents to the CLI, token files, metrics,
 * the training loop and the language model, so that a new tokenizer plugs in without touching them.
 */
export interface TokenGrid {
  /** Token grid per clip: [t, h, w] for MAGVIT-v2 latents, [n] for LARP's holistic tokens. */
  shape: number[];
}

/** What a tokenizer's input is; token files, metrics, sample writers and the training task dispatch on it. */
export type Modality = 'video' | 'image' | 'audio';

export interface Tokenizer {
  /** Its kind's name in the registry (src/tokenizers/registry.ts). */
  readonly kind: string;
  readonly modality: Modality;
  /** Model config (JSON-able; hashed into token files). */
  readonly config: Record<string, unknown>;
  /** log2 of the vocabulary size (bits per token in token files). */
  readonly vocabBits: number;
  readonly vocabSize: number;
  /** Colour channels of its input (3 = RGB, 1 = gray; default 3). */
  readonly channels?: number;
  /** Frames per clip the tokenizer takes (e.g. 1 + 4k for MAGVIT-v2; 1 = images). */
  readonly clipFrames: number;
  /**
   * The token grid of one input clip, given the clip's shape without the batch axis: C×T×H×W for video and image
   * tokenizers (an audio tokenizer: C×samples).
   */
  grid(clip: readonly number[]): TokenGrid;
  /** Input N×…clip in [-1, 1] (video: N×C×T×H×W) → int64 ids [N, …grid]. */
  encode(video: Tensor): Tensor;
  /** int64 ids [N, …grid] → the input's layout (video: N×C×T×H×W) in [-1, 1]. */
  decode(ids: Tensor): Tensor;
  /**
   * encode and decode through the backend's asynchronous run, the only one a browser backend (onnxruntime-web)
   * has: the same results, and nothing on the way needs a synchronous run (fp32; int8 calibrates synchronously).
   */
  encodeAsync(video: Tensor): Promise<Tensor>;
  decodeAsync(ids: Tensor): Promise<Tensor>;
  /** Inference precision of encode/decode ('fp32' when absent). */
  readonly precision?: Precision;
  /** Switches encode/decode to `precision` (tokenizers without reduced-precision inference lack it). */
  setPrecision?(precision: Precision, opts?: PrecisionOptions): void;
  /**
   * Closes the compiled encode/decode programs now instead of at garbage collection (for a 370 M-parameter model
   * they hold GBs: weights baked in, activation arenas); the next encode/decode compiles again.
   */
  release?(): void;
}

export interface PrecisionOptions {
  /**
   * int8: clips N×C×T×H×W in [−1, 1] to calibrate the quantized programs on (any N; the clip shape of the inputs
   * to come). Without them each compiled shape is calibrated on its first input.
   */
  calibration?: Tensor;
}

/** Sets a tokenizer's inference precision, with a clear error for a tokenizer that has only float32. */
export function setTokenizerPrecision(tok: Tokenizer, precision: Precision, opts: PrecisionOptions = {}): void {
  if (precision === (tok.precision ?? 'fp32') && precision === 'fp32') return;
  if (!tok.setPrecision) throw new VtokError(`the ${tok.kind} tokenizer has no ${precision} inference (only fp32)`);
  tok.setPrecision(precision, opts);
}

/**
 * Calibration clips [M, …clip] as argument lists for a program taking batches of `n` clips of shape `clipShape`:
 * ⌈M / n⌉ batches, the last filled by cycling from the first clip.
 */
export function calibrationBatches(clips: Tensor, n: number, clipShape: number[], label: string): Tensor[][] {
  if (!clips.isConcrete || clips.dtype !== 'float32')
    throw new VtokError(`${label}: calibration clips must be a concrete float32 tensor`);
  const [m, ...shape] = clips.shape as [number, ...number[]];
  if (clips.rank !== clipShape.length + 1 || shape.some((d, i) => d !== clipShape[i])) {
    throw new VtokError(
      `${label}: calibration clips are [${clips.shape}], ` +
        `the input clips are [${clipShape}] (need M×${clipShape.join('×')})`,
    );
  }
  if (m < 1) throw new VtokError(`${label}: no calibration clips`);
  const size = shape.reduce((a, b) => a * b, 1);
  const src = clips.data as Float32Array;
  const out: Tensor[][] = [];
  for (let b = 0; b < Math.ceil(m / n); b++) {
    const data = new Float32Array(n * size);
    for (let i = 0; i < n; i++)
      data.set(src.subarray(((b * n + i) % m) * size, (((b * n + i) % m) + 1) * size), i * size);
    out.push([E.concrete(data, [n, ...shape], 'float32')]);
  }
  return out;
}
