import type { FrechetEstimate } from '../../metrics/frechet.js';
import type { T2vBudget } from './budget.js';
import type { HeldSplit } from './data.js';

/** The classifier's reading of a clip set against what its captions asked for. */
export interface Accuracy {
  digit: number;
  axis: number;
  /** Digit and axis both right. */
  both: number;
  clips: number;
}

/** One set of the text-faithfulness table, read against one held-out split. */
export interface FaithfulnessRow {
  /**
   * `real-other`: n other real clips of the split (the real-vs-real reference); `cfg1`, `cfg3`, …: the t2v task at
   * that CFG scale; `t2v-hidden`: the t2v task with its text hidden (what CFG subtracts); `uncond-task`: the uncond
   * task (no text slot).
   */
  arm: string;
  split: HeldSplit;
  cfg: number | null;
  /** Against the split's captions; null for the real reference (the classifier's real figures: classifier.real). */
  accuracy: Accuracy | null;
  /** To the n real clips whose captions prompt the generated sets (classifier features), n vs n, bootstrapped. */
  frechet: FrechetEstimate;
}

/** One accuracy with the text and with it hidden, over the same captions and seeds, and their difference. */
export interface Difference {
  with_text: number;
  hidden: number;
  /** with_text − hidden, and its 95 % interval. */
  difference: number;
  ci95: [number, number];
}

/** Whether the model uses the text: a CFG scale's set against the text-hidden set, caption by caption. */
export interface TextUse {
  split: HeldSplit;
  cfg: number;
  pairs: number;
  digit: Difference;
  axis: Difference;
  both: Difference;
}

export interface FramePrediction {
  clips: number;
  cond_latent_frames: number;
  given_frames: number;
  seed: number;
  per_frame: FramePredictionRow[];
}

export interface FramePredictionRow {
  /** Frame index in the clip (the first `given_frames` are given). */
  frame: number;
  psnr: { predicted: number; repeat_last: number; reconstruction: number };
  ssim: { predicted: number; repeat_last: number; reconstruction: number };
}

export interface T2vResults {
  study: 't2v';
  model: string;
  budget: T2vBudget & { name: string };
  seed: number;
  clip: { channels: number; frames: number; height: number; width: number };
  /** What chose the best checkpoint (the one studied): its validation corpus, when recorded. */
  checkpoint: { chosen_on: string; validation: string | null; recorded: boolean };
  /**
   * The classifier's one set of real figures: its reading of the n real clips of each split whose captions prompt
   * the generated sets.
   */
  classifier: { feature_dim: number; steps: number; real: Record<HeldSplit, Accuracy> };
  /** n clips per set, every generated set drawn with one seed (the sets pair clip by clip), B bootstrap replicates. */
  faithfulness: { clips: number; seed: number; bootstrap: number; rows: FaithfulnessRow[] };
  text_use: TextUse[];
  /** One run per number of latent frames given. */
  frame_prediction: FramePrediction[];
  long_video: {
    clips: number;
    extensions: number;
    frames: number;
    cfg: number;
    seed: number;
    first_segment: Accuracy;
    last_segment: Accuracy;
    /** Fraction of videos whose last segment is read as the same digit / axis as their first. */
    same_reading: { digit: number; axis: number };
  };
  timings_s: Record<string, number>;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : String(x));
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

export function t2vMarkdown(r: T2vResults): string {
  const { budget: b } = r;
  const lines: string[] = [];
  lines.push(
    `# Text-to-video study (${b.name} budget, seed ${r.seed})`,
    '',
    `Model: \`${r.model}\`; clips ${r.clip.frames}×${r.clip.height}×${r.clip.width}, ` +
      `${r.clip.channels === 1 ? 'gray' : 'RGB'}. ` +
      `Sampling: temperature ${b.sampling.temperature}${b.sampling.topK ? `, top-k ${b.sampling.topK}` : ''}` +
      `${b.sampling.topP ? `, top-p ${b.sampling.topP}` : ''}.`,
    '',
  );
  const fa = r.faithfulness,
    n = fa.clips;
  lines.push(
    `Checkpoint: the model directory's best; ${r.checkpoint.chosen_on}.`,
    '',
    '## Text faithfulness',
    '',
    `vtok's 3D-CNN classifier (features of width ${r.classifier.feature_dim}), ` +
      `trained for ${r.classifier.steps} steps on real one-digit captioned Moving ` +
      "MNIST clips (MNIST training digits, every digit×motion pair) reads each clip's digit and axis of motion. " +
      `Each held-out split gives ${n} one-digit captions and the ${n} real clips they describe (MNIST test ` +
      'digits): split test has digit×motion pairs seen in training, split unseen pairs never in the training ' +
      "captions. The real rows are the classifier's reading of those clips: the ceiling of what it can confirm. " +
      `Every generated set has ${n} clips, drawn with seed ${fa.seed}; ` +
      '"text hidden" is the t2v task from the same captions with every text key hidden (the unconditional stream ' +
      'that classifier-free guidance subtracts; one set, read against both splits\' captions), "uncond task" the ' +
      'separately trained uncond task (no text slot; also one set). Chance: 10 % digit, 50 % axis.',
    '',
    `Fréchet distance: to the ${n} real clips of the split, on the classifier's features, ${n} clips against ${n} ` +
      '(a distance fitted to n clips is biased upwards, so only sets of one n compare); the reference is ' +
      `${n} other real clips of the split. Beside it, the bootstrap's bias-corrected value ± the standard ` +
      `deviation of ${fa.bootstrap} replicates (clips resampled with replacement); the corrected value can fall ` +
      'below 0 where two sets come from one distribution.',
    '',
    `| set (${n} clips) | split | digit acc. | axis acc. | both | Fréchet to real ↓ | bias-corrected ± sd |`,
    '|---|---|---|---|---|---|---|',
  );
  const setName = (row: FaithfulnessRow) =>
    row.arm === 'real-other'
      ? 'real: other clips of the split'
      : row.arm === 't2v-hidden'
        ? 't2v, text hidden (what CFG subtracts)'
        : row.arm === 'uncond-task'
          ? 'uncond task'
          : `t2v, CFG ${row.cfg}`;
  for (const split of ['test', 'unseen'] as const) {
    const a = r.classifier.real[split];
    lines.push(
      `| real: the captions' own clips | ${split} | ${pct(a.digit)} | ${pct(a.axis)} | ${pct(a.both)} | – | – |`,
    );
    for (const row of fa.rows.filter((x) => x.split === split)) {
      const acc = row.accuracy;
      lines.push(
        `| ${setName(row)} | ${split} | ${acc ? pct(acc.digit) : '–'} | ${acc ? pct(acc.axis) : '–'} | ` +
          `${acc ? pct(acc.both) : '–'} | ${f(row.frechet.value)} | ${f(row.frechet.corrected).replace(/^-/, '−')} ± ` +
          `${f(row.frechet.sd)} |`,
      );
    }
  }
  if (!fa.rows.some((x) => x.arm === 'uncond-task')) lines.push('', 'The model has no uncond task: no set for it.');
  const pts = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)}`;
  const diff = (d: Difference) => `${pts(d.difference)} [${pts(d.ci95[0])}, ${pts(d.ci95[1])}]`;
  lines.push(
    '',
    '## Does the model use the text?',
    '',
    'Each caption drawn with its text and with the text hidden, with the same seed (so the same sampler draws): ' +
      'the difference in accuracy (with text − hidden, in points), paired by caption, with its 95 % interval ' +
      '(normal approximation to the mean of the per-caption differences). An interval above 0 says the text ' +
      'moves the clips toward the caption.',
    '',
    '| split | CFG | pairs | digit: with text − hidden [95 % CI] | axis | both |',
    '|---|---|---|---|---|---|',
    ...r.text_use.map(
      (u) => `| ${u.split} | ${u.cfg} | ${u.pairs} | ${diff(u.digit)} | ${diff(u.axis)} | ${diff(u.both)} |`,
    ),
  );
  lines.push(
    '',
    '## Frame prediction',
    '',
    'PSNR (dB) and SSIM per future frame against the ground truth, beside repeating the last given ' +
      "(real) frame and the tokenizer's own reconstruction (the ceiling of anything decoded from tokens).",
  );
  for (const fp of r.frame_prediction) {
    lines.push(
      '',
      `${fp.clips} held-out clips (split test, seed ${fp.seed}); the model is given the first ` +
        `${fp.cond_latent_frames} latent frame(s) = the first ${fp.given_frames} frame(s) and predicts the rest.`,
      '',
      '| frame | PSNR predicted | PSNR repeat last | PSNR reconstruction ' +
        '| SSIM predicted | SSIM repeat last | SSIM reconstruction |',
      '|---|---|---|---|---|---|---|',
    );
    for (const row of fp.per_frame) {
      lines.push(
        `| ${row.frame} | ${f(row.psnr.predicted)} | ${f(row.psnr.repeat_last)} | ${f(row.psnr.reconstruction)} | ` +
          `${f(row.ssim.predicted, 3)} | ${f(row.ssim.repeat_last, 3)} | ${f(row.ssim.reconstruction, 3)} |`,
      );
    }
  }
  const lv = r.long_video;
  lines.push(
    '',
    '## Long video',
    '',
    `${lv.clips} text-to-video clips (split test captions, CFG ${lv.cfg}, seed ${lv.seed}) extended ${lv.extensions} ` +
      `times (each time the last latent frame is decoded, re-tokenized and continued), ${lv.frames} frames in all.`,
    '',
    '| segment | digit acc. | axis acc. | both |',
    '|---|---|---|---|',
    `| first ${r.clip.frames} frames | ${pct(lv.first_segment.digit)} | ` +
      `${pct(lv.first_segment.axis)} | ${pct(lv.first_segment.both)} |`,
    `| last ${r.clip.frames} frames | ${pct(lv.last_segment.digit)} | ` +
      `${pct(lv.last_segment.axis)} | ${pct(lv.last_segment.both)} |`,
    '',
    'The last segment is read as the same digit as the first in ' +
      `${pct(lv.same_reading.digit)} of the videos, the same axis in ${pct(lv.same_reading.axis)}.`,
  );
  lines.push(
    '',
    '## What this scale can and cannot show',
    '',
    `- Every accuracy is over ${n} clips: one clip moves a figure by ${pct(1 / n)}; a binomial standard error ` +
      `at 50 % over ${n} clips is ${pct(Math.sqrt(0.25 / n))}, at 10 % ${pct(Math.sqrt(0.09 / n))}.`,
    "- The classifier is vtok's own, trained on the same kind of clips; its accuracy " +
      'on real held-out clips bounds what it can confirm on generated ones, ' +
      'and its Fréchet distances compare runs that use the same classifier only (they are not FVDs).',
    '- One seed: the tables show one draw of the sampler; the Fréchet spread is over clips (bootstrap), and the ' +
      'text-use intervals over captions.',
    "- Moving MNIST at this size says whether the model binds the caption's digit and motion (and, " +
      'on unseen pairs, whether it composes them); it cannot show the open-domain fidelity, ' +
      "motion quality or scale effects of the paper's MSR-VTT/UCF-101/K600 evaluations.",
  );
  lines.push(
    '',
    `Timings (s): ${
      Object.entries(r.timings_s)
        .map(([k, v]) => `${k} ${f(v, 1)}`)
        .join(', ') || 'none (all stages were already done)'
    }.`,
  );
  return `${lines.join('\n')}\n`;
}
