import type { Tensor } from '../engine/index.js';

/**
 * The one face every tokenizer (MAGVIT-v2, LARP, later SoundStream) presents to the CLI, token files, metrics,
 * the training loop and the language model, so that a new tokenizer plugs in without touching them.
 */
export interface TokenGrid {
  /** Token grid per clip: [t, h, w] for MAGVIT-v2 latents, [n] for LARP's holistic tokens. */
  shape: number[];
}

export interface Tokenizer {
  readonly kind: 'magvit2' | 'larp' | 'soundstream';
  /** Model config (JSON-able; hashed into token files). */
  readonly config: Record<string, unknown>;
  /** log2 of the vocabulary size (bits per token in token files). */
  readonly vocabBits: number;
  readonly vocabSize: number;
  /** Colour channels of its input (3 = RGB, 1 = gray; default 3). */
  readonly channels?: number;
  /** Frames per clip the tokenizer takes (e.g. 1 + 4k for MAGVIT-v2; 1 = images). */
  readonly clipFrames: number;
  /** The token grid for an input of frames × height × width. */
  grid(frames: number, height: number, width: number): TokenGrid;
  /** Video N×C×T×H×W in [-1, 1] → int64 ids [N, …grid]. */
  encode(video: Tensor): Tensor;
  /** int64 ids [N, …grid] → video N×C×T×H×W in [-1, 1]. */
  decode(ids: Tensor): Tensor;
}
