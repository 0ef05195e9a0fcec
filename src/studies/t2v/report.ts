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

export interface FaithfulnessArm {
  /** `cfg1`, `cfg3`, … or `uncond` (text dropped, read against the same captions). */
  arm: string;
  split: HeldSplit;
  cfg: number | null;
  accuracy: Accuracy;
  /** Fréchet distance of the generated clips to real clips of the same split (classifier features). */
  frechet: number;
  seed: number;
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
  classifier: { feature_dim: number; steps: number; real: Record<HeldSplit, Accuracy> };
  /** Fréchet distance between two independent real sets (training-split vs test-split clips). */
  reference: { frechet_real_vs_real: number; clips: number };
  faithfulness: FaithfulnessArm[];
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
  lines.push(
    '## Text faithfulness',
    '',
    `vtok's 3D-CNN classifier (features of width ${r.classifier.feature_dim}), ` +
      `trained for ${r.classifier.steps} steps on real one-digit captioned Moving ` +
      "MNIST clips (MNIST training digits) reads each clip's digit and axis of motion. " +
      'Captions are one-digit held-out captions (MNIST test digits): "seen" pairs (split ' +
      'test) and digit×motion pairs never in the training captions (split unseen). ' +
      'One-digit captions suffice for the accuracy: the classifier reads one digit. ' +
      'Unconditional samples are read against the same captions (chance: 10 % digit, 50 % axis).',
    '',
    '| clips | split | CFG | seed | digit acc. | axis acc. | both | Fréchet to real ↓ |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const s of ['test', 'unseen'] as const) {
    const a = r.classifier.real[s];
    lines.push(
      `| real held-out (${a.clips}) | ${s} | – | – | ${pct(a.digit)} | ${pct(a.axis)} | ${pct(a.both)} | ` +
        `${s === 'test' ? `${f(r.reference.frechet_real_vs_real)} (train vs test split)` : '–'} |`,
    );
  }
  for (const a of r.faithfulness) {
    lines.push(
      `| ${a.arm === 'uncond' ? 'unconditional' : 'generated'} (${a.accuracy.clips}) ` +
        `| ${a.split} | ${a.cfg ?? 'text dropped'} | ${a.seed} | ${pct(a.accuracy.digit)} | ` +
        `${pct(a.accuracy.axis)} | ${pct(a.accuracy.both)} | ${f(a.frechet)} |`,
    );
  }
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
    `- Every accuracy is over at most ${Math.max(b.captions, b.uncond)} clips: one clip moves a figure by ` +
      `${pct(1 / Math.max(1, b.captions))}; differences of a few points between arms are noise (a binomial ` +
      `standard error at 50 % over ${b.captions} clips is ${pct(Math.sqrt(0.25 / Math.max(1, b.captions)))}).`,
    "- The classifier is vtok's own, trained on the same kind of clips; its accuracy " +
      'on real held-out clips bounds what it can confirm on generated ones, ' +
      'and its Fréchet distances compare runs that use the same classifier only (they are not FVDs).',
    '- One seed per arm: the tables show one draw of the sampler, not a spread over seeds.',
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
