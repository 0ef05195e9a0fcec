import { VtokError, check } from '../../util/errors.js';
import type { Sampling } from './generator.js';

/** How much a run of the text-to-video study spends. */
export interface T2vBudget {
  /**
   * stemStride 2: MNIST digits are 28 pixels across, so conv1 can halve the 64×64 frames (7× faster, same accuracy per
   * step).
   */
  classifier: { steps: number; batch: number; width: number; featureDim: number; lr: number; stemStride: number };
  /**
   * n, the clips of every set: the captions of each held-out split (and the real clips they describe), the other
   * real clips of each split (the real-vs-real reference), and every generated set (each CFG scale per split, the
   * text-hidden t2v set, the uncond task's set). One n for all: the Fréchet distance on the classifier's features
   * is biased by n, and the text-use comparison pairs the sets clip by clip.
   */
  clips: number;
  cfgScales: number[];
  /** Bootstrap replicates of each Fréchet distance (its bias correction and spread). */
  bootstrap: number;
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
    clips: 2,
    cfgScales: [1, 3],
    bootstrap: 8,
    fp: { clips: 2, condFrames: [1, 2] },
    long: { clips: 1, extensions: 4, cfg: 3 },
    sampling: { temperature: 1, topK: 64, batch: 4 },
  },
  /**
   * 256 clips per set: per CFG scale 256 seen + 256 unseen captions, 256 text-hidden, 256 from the uncond task
   * (1,536 generated; ~25 minutes for a 128-wide model on the 2-core AMD EPYC, docs/t2v-mnist.md).
   */
  small: {
    classifier: { steps: 600, batch: 32, width: 16, featureDim: 64, lr: 3e-3, stemStride: 2 },
    clips: 256,
    cfgScales: [1, 3],
    bootstrap: 200,
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
  check(Number.isInteger(b.clips) && b.clips >= 2, 'budget: every set needs at least 2 clips (a covariance)');
  check(Number.isInteger(b.bootstrap) && b.bootstrap >= 2, 'budget: the bootstrap needs at least 2 replicates');
  check(
    b.fp.clips <= b.clips && b.long.clips <= b.clips,
    'budget: frame prediction and long video take their clips and captions from the n test clips',
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
