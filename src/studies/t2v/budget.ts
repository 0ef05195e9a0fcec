import { VtokError, check } from '../../util/errors.js';
import type { Sampling } from './generator.js';

/** How much a run of the text-to-video study spends. */
export interface T2vBudget {
  /**
   * stemStride 2: MNIST digits are 28 pixels across, so conv1 can halve the 64×64 frames (7× faster, same accuracy per
   * step).
   */
  classifier: { steps: number; batch: number; width: number; featureDim: number; lr: number; stemStride: number };
  /** Real held-out clips per split for the classifier's accuracy and the Fréchet reference. */
  realClips: number;
  /** Captions per split ('test': seen digit×motion pairs, 'unseen': held-out pairs) per CFG scale. */
  captions: number;
  cfgScales: number[];
  /** Unconditional samples (the text-dropped baseline), read against as many captions. */
  uncond: number;
  /** Frame prediction: held-out clips, and the latent frames given (one run per entry). */
  fp: { clips: number; condFrames: number[] };
  /** Long videos: clips from captions, extensions each. */
  long: { clips: number; extensions: number; cfg: number };
  sampling: Sampling;
}

export const T2V_BUDGETS: Record<string, T2vBudget> = {
  /** A few samples of everything, for tests of the pipeline (the numbers mean nothing). */
  micro: {
    classifier: { steps: 3, batch: 4, width: 4, featureDim: 8, lr: 3e-3, stemStride: 2 },
    realClips: 4,
    captions: 2,
    cfgScales: [1, 3],
    uncond: 2,
    fp: { clips: 2, condFrames: [1, 2] },
    long: { clips: 1, extensions: 4, cfg: 3 },
    sampling: { temperature: 1, topK: 64, batch: 4 },
  },
  /** 256 generated clips per CFG scale (128 seen + 128 unseen captions), 256 unconditional. */
  small: {
    classifier: { steps: 600, batch: 32, width: 16, featureDim: 64, lr: 3e-3, stemStride: 2 },
    realClips: 512,
    captions: 128,
    cfgScales: [1, 3],
    uncond: 256,
    fp: { clips: 128, condFrames: [1, 2] },
    long: { clips: 32, extensions: 4, cfg: 3 },
    sampling: { temperature: 1, topK: 64, batch: 32 },
  },
};

export function resolveT2vBudget(b: string | T2vBudget): T2vBudget & { name: string } {
  if (typeof b !== 'string') return { ...b, name: 'custom' };
  const budget = T2V_BUDGETS[b];
  if (!budget) throw new VtokError(`unknown study budget "${b}" (known: ${Object.keys(T2V_BUDGETS).join(', ')})`);
  return { ...budget, name: b };
}

export function checkT2vBudget(b: T2vBudget): void {
  check(
    b.uncond <= b.realClips && b.captions <= b.realClips,
    'budget: the real reference set must be at least as large as each generated set',
  );
  check(
    b.cfgScales.length > 0 && b.cfgScales.every((s) => Number.isFinite(s) && s > 0),
    'budget: CFG scales must be positive numbers',
  );
  check(
    b.fp.condFrames.length > 0 && b.fp.condFrames.every((k) => k === 1 || k === 2),
    'budget: frame prediction conditions on 1 or 2 latent frames',
  );
  check(b.long.extensions >= 1 && b.long.clips >= 1, 'budget: long video needs at least one clip and one extension');
}
