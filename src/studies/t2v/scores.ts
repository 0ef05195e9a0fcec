import { classifierPredictions, type VideoClassifier } from '../../classifier/video-classifier.js';
import type { ClipTensor } from '../../io/frame.js';
import type { LabelledSet } from './data.js';
import type { Accuracy, Difference } from './report.js';

/** Per clip, whether the classifier reads the digit, the axis, both, as the captions asked (1) or not (0). */
export interface Readings {
  digit: Uint8Array;
  axis: Uint8Array;
  both: Uint8Array;
}

/** The classifier's reading of clips (N×C×T×H×W) against the labels of the first N clips of `asked`. */
export function readings(clf: VideoClassifier, clips: ClipTensor, asked: LabelledSet): Readings {
  const [digit, axis] = classifierPredictions(clf, clips);
  const [dl, al] = asked.labels;
  const n = clips.shape[0];
  const r = { digit: new Uint8Array(n), axis: new Uint8Array(n), both: new Uint8Array(n) };
  for (let i = 0; i < n; i++) {
    r.digit[i] = +(digit![i] === dl![i]);
    r.axis[i] = +(axis![i] === al![i]);
    r.both[i] = r.digit[i]! & r.axis[i]!;
  }
  return r;
}

const mean = (x: Uint8Array) => x.reduce((s, v) => s + v, 0) / x.length;

export const accuracyOf = (r: Readings): Accuracy => ({
  digit: mean(r.digit),
  axis: mean(r.axis),
  both: mean(r.both),
  clips: r.digit.length,
});

/** Accuracy of a labelled set read against its own labels. */
export const accuracy = (clf: VideoClassifier, set: LabelledSet): Accuracy => accuracyOf(readings(clf, set, set));

/**
 * Paired difference of two 0/1 outcomes per caption (the same caption and sampler draws in both arms): the mean of
 * x − y with a 95 % interval from the normal approximation to the mean of the per-caption differences (fine at the
 * hundreds of pairs the small budget has; with two pairs, as in the micro budget, it means nothing).
 */
export function pairedDifference(x: Uint8Array, y: Uint8Array): Difference {
  const n = x.length;
  const d = Array.from(x, (v, i) => v - y[i]!);
  const m = d.reduce((s, v) => s + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(d.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1)) : 0;
  const half = (1.96 * sd) / Math.sqrt(n);
  return { with_text: mean(x), hidden: mean(y), difference: m, ci95: [m - half, m + half] };
}
