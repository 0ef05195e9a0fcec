import { check, VtokError } from '../../util/errors.js';

/** How much of everything a run of the study spends: clip size, tokens, training steps, evaluation sizes. */
export interface StudyBudget {
  /** Clip size and length. */
  size: number;
  frames: number;
  /** LARP holistic tokens per clip. */
  tokens: number;
  /** Training clips (tokenizers and GPTs) and held-out clips (evaluation, Fréchet reference). */
  trainClips: number;
  heldClips: number;
  larp: { preset: string; steps: number; batch: number; evalEvery: number };
  classifier: { steps: number; batch: number; width: number; featureDim: number; heldOut: number };
  gpt: {
    steps: number;
    batch: number;
    layers: number;
    heads: number;
    dim: number;
    dropout: number;
    lr: number;
    evalEvery: number;
  };
  /** Clips generated per arm (compared with as many held-out clips). */
  samples: number;
  temperature: number;
}

const TINY: StudyBudget = {
  size: 32,
  frames: 8,
  tokens: 32,
  trainClips: 8192,
  heldClips: 512,
  larp: { preset: 'tiny', steps: 3000, batch: 8, evalEvery: 500 },
  classifier: { steps: 300, batch: 32, width: 16, featureDim: 64, heldOut: 512 },
  gpt: { steps: 800, batch: 64, layers: 2, heads: 4, dim: 128, dropout: 0.1, lr: 1e-3, evalEvery: 200 },
  samples: 512,
  temperature: 1,
};

export const STUDY_BUDGETS: Record<string, StudyBudget> = {
  /** A few steps of everything, for tests of the pipeline (numbers mean nothing). */
  micro: {
    size: 16,
    frames: 4,
    tokens: 8,
    trainClips: 32,
    heldClips: 16,
    larp: { preset: 'tiny', steps: 3, batch: 2, evalEvery: 0 },
    classifier: { steps: 3, batch: 8, width: 8, featureDim: 8, heldOut: 16 },
    gpt: { steps: 4, batch: 8, layers: 1, heads: 2, dim: 32, dropout: 0, lr: 1e-3, evalEvery: 0 },
    samples: 16,
    temperature: 1,
  },
  /**
   * About 13 minutes on one thread of a 2-core CPU: 32×32×8 clips, the tiny LARP preset, a 2-layer GPT of width 128.
   */
  tiny: TINY,
  /** The tiny budget with 4× the tokenizer steps and 2× the GPT steps (about 35 minutes on one thread). */
  'tiny-long': {
    ...TINY,
    larp: { ...TINY.larp, steps: 12000, evalEvery: 2000 },
    gpt: { ...TINY.gpt, steps: 1600, evalEvery: 400 },
  },
};

export const ARMS = [
  { name: 'prior', prior: true, label: 'LARP with prior' },
  { name: 'noprior', prior: false, label: 'LARP without prior' },
] as const;
export type ArmName = (typeof ARMS)[number]['name'];

export function resolveBudget(b: string | StudyBudget): StudyBudget & { name: string } {
  if (typeof b !== 'string') return { ...b, name: 'custom' };
  const budget = STUDY_BUDGETS[b];
  if (!budget) throw new VtokError(`unknown study budget "${b}" (known: ${Object.keys(STUDY_BUDGETS).join(', ')})`);
  return { ...budget, name: b };
}

export function checkBudget(b: StudyBudget): void {
  check(
    b.samples <= b.heldClips,
    `budget: ${b.samples} generated clips need at least as many held-out clips (have ${b.heldClips})`,
  );
  check(
    b.samples <= b.trainClips,
    `budget: ${b.samples} samples need at least as many training clips for the real-vs-real reference`,
  );
  check(
    b.gpt.batch <= b.trainClips && b.larp.batch <= b.trainClips,
    'budget: batch sizes must not exceed the training clips',
  );
}
