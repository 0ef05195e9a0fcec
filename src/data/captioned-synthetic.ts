import { check } from '../util/errors.js';
import type { ClipShape } from './dataset.js';
import type { CaptionedClip, CaptionedDataset } from './captioned-mnist.js';
import { DIRECTIONS, syntheticSample, type SyntheticOptions } from './synthetic.js';

/**
 * The synthetic shapes set with captions: each clip's shape, colour, fill, direction of motion and background
 * texture in words, e.g. "a striped red circle moves left over a checker background". Clips are the synthetic
 * set's motion-labelled ones (a straight path that never reaches an edge), so the direction in the caption holds
 * for the whole clip.
 */

/** Named colours; a clip's colour is named by the nearest one (RGB distance). */
const COLOURS: [string, [number, number, number]][] = [
  ['black', [0, 0, 0]],
  ['white', [255, 255, 255]],
  ['gray', [128, 128, 128]],
  ['red', [220, 30, 30]],
  ['green', [30, 180, 30]],
  ['blue', [30, 30, 220]],
  ['yellow', [240, 230, 40]],
  ['cyan', [40, 220, 230]],
  ['magenta', [220, 40, 220]],
  ['orange', [250, 140, 20]],
  ['purple', [120, 40, 160]],
  ['brown', [120, 70, 20]],
];

export function colourName(rgb: readonly number[]): string {
  let best = COLOURS[0]!;
  let bestD = Infinity;
  for (const c of COLOURS) {
    const d = c[1].reduce((s, v, i) => s + (v - rgb[i]!) ** 2, 0);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best[0];
}

export type CaptionedSyntheticOptions = Omit<SyntheticOptions, 'labelBy'>;

export class CaptionedSynthetic implements CaptionedDataset {
  readonly length: number;
  readonly shape: ClipShape;
  readonly classes = [...DIRECTIONS];

  constructor(readonly opts: CaptionedSyntheticOptions = {}) {
    this.length = opts.length ?? 1000;
    check(
      Number.isInteger(this.length) && this.length > 0,
      `captioned synthetic length must be a positive integer, got ${this.length}`,
    );
    this.shape = { channels: 3, frames: opts.frames ?? 16, height: opts.height ?? 64, width: opts.width ?? 64 };
  }

  get(index: number): CaptionedClip {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `captioned synthetic index ${index} out of range [0, ${this.length})`,
    );
    const s = syntheticSample(index, { ...this.opts, labelBy: 'motion' });
    const colour = colourName(s.color);
    const striped = s.striped ? 'striped ' : '';
    const caption = `a ${striped}${colour} ${s.shape} moves ${s.direction} over a ${s.texture} background`;
    return {
      data: s.data,
      label: s.label,
      caption,
      labels: { shape: s.shape, colour, striped: s.striped, direction: s.direction, texture: s.texture },
    };
  }
}
