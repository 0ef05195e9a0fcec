import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { AXES, captionedMnistSample, type CaptionedSplit, SIZE as MNIST_SIZE } from '../data/captioned-mnist.js';
import { clipsToBatch } from '../data/dataset.js';
import { DIRECTIONS, SHAPES, syntheticSample } from '../data/synthetic.js';
import type { ClipTensor } from '../io/frame.js';
import { compileInference, type InferenceFn } from '../nn/compiled.js';
import { Conv3d, GroupNorm, Linear, Module } from '../nn/index.js';
import { AdamW, TrainStep, warmupCosine } from '../nn/train.js';
import { loadTensors, saveTensors } from '../nn/weights-file.js';
import { trainLoop } from '../train/loop.js';
import { VtokError, check } from '../util/errors.js';
import { FeatureStats, frechetDistance } from '../metrics/frechet.js';

/**
 * vtok's own video classifier, for FVD-style Fréchet distances without downloading I3D: a small 3D CNN trained
 * on labelled synthetic clips (src/data/synthetic.ts). Its penultimate layer (`features`) stands in for I3D's
 * features: the Fréchet distance between the features of two clip sets is "FVD-style Fréchet distance with vtok's
 * own classifier" — comparable between runs that use the same classifier weights, not with published FVDs.
 *
 * It is trained on two label sets at once with two heads on one trunk: the direction of motion (right, left,
 * down, up) and the shape (circle, square, triangle, cross). Motion is the label that makes it a *video*
 * classifier — a direction cannot be read from one frame, so the features must follow the object through time
 * and become sensitive to temporal incoherence (objects that jump, stall or change direction), the failure FVD is
 * meant to catch. Shape keeps the features sensitive to appearance as well (a blurred or broken object). The clips
 * are synthetic clips labelled by motion (objects move in a straight line, never bouncing), which is also the data
 * the LARP study trains its tokenizers on.
 *
 *   clip 3×T×H×W ─ conv1 (3³) ─ GN ─ SiLU ─ conv2 (3³, stride 2) ─ GN ─ SiLU ─ conv3 (3³, stride 2) ─ GN ─ SiLU
 *     ─ max over T, H, W ─ fc ─ ReLU = features ─┬─ heads.0 → motion logits
 *                                                └─ heads.1 → shape logits
 *
 * Max pooling, not mean: the object is small against a busy, drifting background, and a mean over the whole clip
 * dilutes it — with mean pooling the same net stayed at chance on both labels for 600 steps, with max pooling it
 * reads the direction of motion almost perfectly within 100. conv1 keeps full resolution because the shapes are
 * only 8–13 pixels across at 32×32 (a stride-2 first layer left shape accuracy near chance).
 */
export interface ClassifierConfig {
  channels: number;
  /** Clip size it was trained on (the net pools globally, but features are only comparable at this size). */
  frames: number;
  size: number;
  /** Channels of the first conv (doubled at each of the next two). */
  width: number;
  featureDim: number;
  /**
   * Spatial stride of conv1 (default 1). 2 quarters the cost for 64×64 clips whose objects are large (MNIST
   * digits are 28 pixels across); the 8–13 pixel synthetic shapes at 32×32 need 1.
   */
  stemStride?: number;
  /** Label sets, one head each. */
  heads: { name: string; classes: string[] }[];
}

export const LABEL_HEADS: ClassifierConfig['heads'] = [
  { name: 'motion', classes: [...DIRECTIONS] },
  { name: 'shape', classes: [...SHAPES] },
];

export class VideoClassifier extends Module {
  conv1: Conv3d;
  norm1: GroupNorm;
  conv2: Conv3d;
  norm2: GroupNorm;
  conv3: Conv3d;
  norm3: GroupNorm;
  fc: Linear;
  heads: Linear[];

  constructor(readonly cfg: ClassifierConfig) {
    super();
    const w = cfg.width;
    check(Number.isInteger(w) && w >= 4 && w % 4 === 0, `classifier width must be a multiple of 4, got ${w}`);
    check(
      cfg.heads.length > 0 && cfg.heads.every((h) => h.classes.length >= 2),
      'classifier needs at least one head of at least 2 classes',
    );
    this.conv1 = new Conv3d(cfg.channels, w, 3, { padding: 1, stride: [1, cfg.stemStride ?? 1, cfg.stemStride ?? 1] });
    this.norm1 = new GroupNorm(4, w);
    this.conv2 = new Conv3d(w, 2 * w, 3, { stride: 2, padding: 1 });
    this.norm2 = new GroupNorm(4, 2 * w);
    this.conv3 = new Conv3d(2 * w, 4 * w, 3, { stride: 2, padding: 1 });
    this.norm3 = new GroupNorm(4, 4 * w);
    this.fc = new Linear(4 * w, cfg.featureDim);
    this.heads = cfg.heads.map((h) => new Linear(cfg.featureDim, h.classes.length));
  }

  /** Clips N×C×T×H×W in [-1, 1] → penultimate features [N, featureDim]. */
  features(video: Tensor): Tensor {
    if (video.rank !== 5 || video.shape[1] !== this.cfg.channels)
      throw new VtokError(`classifier: expected clips N×${this.cfg.channels}×T×H×W, got [${video.shape}]`);
    let x = E.silu(this.norm1.forward(this.conv1.forward(video)));
    x = E.silu(this.norm2.forward(this.conv2.forward(x)));
    x = E.silu(this.norm3.forward(this.conv3.forward(x)));
    return E.relu(this.fc.forward(E.max(x, [2, 3, 4])));
  }

  /** Logits per head. */
  logits(video: Tensor): Tensor[] {
    const f = this.features(video);
    return this.heads.map((h) => h.forward(f));
  }
}

// ---- labelled synthetic clips ----

export interface LabelledClips {
  /** N×3×T×H×W in [-1, 1]. */
  data: Float32Array;
  shape: [number, number, number, number, number];
  /** Labels per head (LABEL_HEADS order: motion, shape). */
  labels: Int32Array[];
}

export interface SyntheticClipOptions {
  seed: number;
  frames: number;
  size: number;
}

/** Synthetic clips start … start+count−1 of a seed, labelled by motion (the dataset's label) and by shape. */
export function labelledSyntheticClips(start: number, count: number, o: SyntheticClipOptions): LabelledClips {
  check(
    Number.isInteger(start) && start >= 0 && Number.isInteger(count) && count > 0,
    `labelled clips: need start ≥ 0 and count > 0, got ${start}, ${count}`,
  );
  const opts = { seed: o.seed, frames: o.frames, height: o.size, width: o.size, labelBy: 'motion' as const };
  const samples = Array.from({ length: count }, (_, i) => syntheticSample(start + i, opts));
  const b = clipsToBatch(
    samples.map((s) => ({ data: s.data, label: s.label })),
    { channels: 3, frames: o.frames, height: o.size, width: o.size },
    samples.map((_, i) => start + i),
  );
  return {
    data: b.data,
    shape: b.shape,
    labels: [Int32Array.from(samples, (s) => s.label), Int32Array.from(samples, (s) => SHAPES.indexOf(s.shape))],
  };
}

/**
 * Where a classifier's labelled training clips come from: clips start … start+count−1 of a seed, labelled per
 * head. Synthetic shapes (motion, shape) by default; captioned Moving MNIST (digit, axis) for text-to-video.
 */
export interface LabelledSource {
  name: string;
  /** What the run's config.json records as its data (resuming checks it). */
  describe: Record<string, unknown>;
  channels: number;
  size: number;
  heads: ClassifierConfig['heads'];
  clips(start: number, count: number, seed: number): LabelledClips;
}

export function syntheticSource(o: { frames: number; size: number }): LabelledSource {
  return {
    name: 'synthetic',
    describe: { name: 'synthetic', labelBy: 'motion' },
    channels: 3,
    size: o.size,
    heads: LABEL_HEADS,
    clips: (start, count, seed) => labelledSyntheticClips(start, count, { ...o, seed }),
  };
}

export const CAPTIONED_MNIST_HEADS: ClassifierConfig['heads'] = [
  { name: 'digit', classes: Array.from({ length: 10 }, (_, d) => String(d)) },
  { name: 'axis', classes: [...AXES] },
];

/**
 * One-digit captioned Moving MNIST clips labelled by the caption's digit and axis of motion. The axis can only be
 * read across frames, so (as with the synthetic motion label) the features must follow the digit through time.
 * `split` picks the MNIST digits and caption pairs (src/data/captioned-mnist.ts); 'train' uses `seed`. An evaluator
 * trains on `allPairs` training clips: trained on the seen pairs only, it read the digit of held-out pairs (a 0
 * moving up and down) right in 3.5 % of real clips against 91 % on seen pairs — it had learnt the pairs, not the digit.
 */
export function captionedMnistSource(o: {
  frames: number;
  channels: 1 | 3;
  split?: CaptionedSplit;
  allPairs?: boolean;
}): LabelledSource {
  const split = o.split ?? 'train',
    allPairs = split === 'train' && !!o.allPairs;
  return {
    name: `captioned-mnist-${split}`,
    describe: { name: 'captioned-mnist', split, digits: 1, channels: o.channels, ...(allPairs ? { allPairs } : {}) },
    channels: o.channels,
    size: MNIST_SIZE,
    heads: CAPTIONED_MNIST_HEADS,
    clips(start, count, seed) {
      check(
        Number.isInteger(start) && start >= 0 && Number.isInteger(count) && count > 0,
        `labelled clips: need start ≥ 0 and count > 0, got ${start}, ${count}`,
      );
      const samples = Array.from({ length: count }, (_, i) =>
        captionedMnistSample(start + i, { split, seed, frames: o.frames, digits: 1, allPairs }),
      );
      const clips = samples.map((s) => ({
        data:
          o.channels === 1
            ? s.frames
            : Uint8Array.from({ length: s.frames.length * 3 }, (_, i) => s.frames[Math.floor(i / 3)]!),
      }));
      const b = clipsToBatch(
        clips,
        { channels: o.channels, frames: o.frames, height: MNIST_SIZE, width: MNIST_SIZE },
        samples.map((_, i) => start + i),
      );
      return {
        data: b.data,
        shape: b.shape,
        labels: [
          Int32Array.from(samples, (s) => s.digits[0]!),
          Int32Array.from(samples, (s) => AXES.indexOf(s.axes[0]!)),
        ],
      };
    },
  };
}

// ---- compiled inference ----

const featureFns = new WeakMap<VideoClassifier, InferenceFn<[Tensor]>>();
const logitFns = new WeakMap<VideoClassifier, InferenceFn<[Tensor]>>();

function clipsTensor(clf: VideoClassifier, data: Float32Array, shape: readonly number[]): void {
  check(
    shape.length === 5 && shape[1] === clf.cfg.channels,
    `classifier: expected clips N×${clf.cfg.channels}×T×H×W, got [${shape}]`,
  );
  check(
    shape[2] === clf.cfg.frames && shape[3] === clf.cfg.size && shape[4] === clf.cfg.size,
    `classifier: trained on ${clf.cfg.frames}×${clf.cfg.size}×${clf.cfg.size} clips, ` +
      `got ${shape[2]}×${shape[3]}×${shape[4]}`,
  );
  check(data.length === shape.reduce((a, b) => a * b, 1), `classifier: ${data.length} values for shape [${shape}]`);
}

/** Runs `fn` over clips in batches of `batchSize` (the last one padded, so one compiled shape serves all). */
function batched(
  clf: VideoClassifier,
  data: Float32Array,
  shape: readonly number[],
  batchSize: number,
  fn: (x: Tensor) => Float32Array[],
  widths: number[],
): Float32Array[] {
  clipsTensor(clf, data, shape);
  const n = shape[0]!,
    per = data.length / n,
    B = Math.min(batchSize, n);
  const outs = widths.map((w) => new Float32Array(n * w));
  for (let s = 0; s < n; s += B) {
    const rows = Math.min(B, n - s);
    const chunk = new Float32Array(B * per);
    chunk.set(data.subarray(s * per, (s + rows) * per));
    const res = fn(E.concrete(chunk, [B, ...shape.slice(1)], 'float32'));
    res.forEach((r, k) => {
      outs[k]!.set(r.subarray(0, rows * widths[k]!), s * widths[k]!);
    });
  }
  return outs;
}

/** Penultimate features of clips (N×C×T×H×W in [-1, 1]) → row-major [N, featureDim]. */
export function classifierFeatures(clf: VideoClassifier, clips: ClipTensor, batchSize = 32): Float32Array {
  let f = featureFns.get(clf);
  if (!f) {
    f = compileInference(clf, (x: Tensor) => clf.features(x), 'classifier_features');
    featureFns.set(clf, f);
  }
  return batched(clf, clips.data, clips.shape, batchSize, (x) => [(f!(x) as Tensor).data as Float32Array], [
    clf.cfg.featureDim,
  ])[0]!;
}

/** The predicted class of each clip, per head (clips N×C×T×H×W in [-1, 1]). */
export function classifierPredictions(clf: VideoClassifier, clips: ClipTensor, batchSize = 32): Int32Array[] {
  let f = logitFns.get(clf);
  if (!f) {
    f = compileInference(clf, (x: Tensor) => clf.logits(x), 'classifier_logits');
    logitFns.set(clf, f);
  }
  const widths = clf.cfg.heads.map((h) => h.classes.length);
  const logits = batched(
    clf,
    clips.data,
    clips.shape,
    batchSize,
    (x) => (f!(x) as Tensor[]).map((t) => t.data as Float32Array),
    widths,
  );
  const n = clips.shape[0];
  return widths.map((C, k) => {
    const lg = logits[k]!;
    return Int32Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let c = 1; c < C; c++) if (lg[i * C + c]! > lg[i * C + best]!) best = c;
      return best;
    });
  });
}

/** Accuracy (fraction correct) per head on labelled clips. */
export function classifierAccuracy(clf: VideoClassifier, clips: LabelledClips, batchSize = 32): Record<string, number> {
  const pred = classifierPredictions(clf, clips, batchSize);
  const out: Record<string, number> = {};
  clf.cfg.heads.forEach((h, k) => {
    const labels = clips.labels[k]!;
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (pred[k]![i] === labels[i]) correct++;
    out[h.name] = correct / labels.length;
  });
  return out;
}

/** FVD-style Fréchet distance between two clip sets, with this classifier's features. */
export function classifierFrechetDistance(clf: VideoClassifier, a: ClipTensor, b: ClipTensor): number {
  const d = clf.cfg.featureDim;
  return frechetDistance(
    new FeatureStats(d).add(classifierFeatures(clf, a)).stats(),
    new FeatureStats(d).add(classifierFeatures(clf, b)).stats(),
  );
}

// ---- training, saving, loading ----

export interface ClassifierTrainOptions extends SyntheticClipOptions {
  /** Run directory (checkpoints, metrics, curves; re-running resumes). */
  runDir: string;
  steps: number;
  batchSize: number;
  lr?: number;
  width?: number;
  featureDim?: number;
  stemStride?: number;
  /** Held-out clips (from another seed) for the accuracy reported every evalEvery steps and at the end. */
  heldOut?: number;
  evalEvery?: number;
  quiet?: boolean;
  /** Labelled clips to train on (default: synthetic shapes of `size`); held-out clips come from seed + 1. */
  source?: LabelledSource;
}

export interface TrainedClassifier {
  classifier: VideoClassifier;
  /** Held-out accuracy per head. */
  accuracy: Record<string, number>;
  /** Where the weights were saved (runDir/classifier.safetensors). */
  path: string;
}

/**
 * Trains the classifier on fresh synthetic clips (batch i holds clips i·B … (i+1)·B−1 of the training seed, so
 * no clip is seen twice and a resumed run sees the same data) with the shared loop, then saves the weights with
 * their config as safetensors metadata.
 */
export async function trainVideoClassifier(o: ClassifierTrainOptions): Promise<TrainedClassifier> {
  const source = o.source ?? syntheticSource(o);
  check(
    source.size === o.size,
    `classifier: the ${source.name} clips are ${source.size}×${source.size}, not ${o.size}×${o.size}`,
  );
  const cfg: ClassifierConfig = {
    channels: source.channels,
    frames: o.frames,
    size: o.size,
    width: o.width ?? 16,
    featureDim: o.featureDim ?? 64,
    heads: source.heads,
    ...(o.stemStride ? { stemStride: o.stemStride } : {}),
  };
  const clf = new VideoClassifier(cfg);
  const held = source.clips(0, o.heldOut ?? 256, o.seed + 1);
  const step = new TrainStep(
    clf,
    (b: { video: Tensor; labels: Tensor[] }) => {
      const logits = clf.logits(b.video);
      const ces = logits.map((l, k) => E.crossEntropy(l, b.labels[k]!));
      const metrics: Record<string, Tensor> = {};
      cfg.heads.forEach((h, k) => {
        metrics[`ce_${h.name}`] = ces[k]!;
      });
      return { loss: ces.reduce((a, c) => E.add(a, c)), metrics };
    },
    {
      optimizer: new AdamW({ weightDecay: 0.01 }),
      schedule: warmupCosine(o.lr ?? 3e-3, Math.max(1, Math.round(o.steps / 20)), o.steps, (o.lr ?? 3e-3) / 10),
      clipNorm: 1,
    },
  );
  async function* batches(start: number) {
    for (let i = start; ; i++) {
      const c = source.clips(i * o.batchSize, o.batchSize, o.seed);
      yield {
        video: E.concrete(c.data, c.shape, 'float32'),
        labels: c.labels.map((l) => E.concrete(l, [l.length], 'int32')),
      };
    }
  }
  let accuracy: Record<string, number> = {};
  await trainLoop(
    {
      modules: { model: clf },
      steps: { model: step },
      iterate(b: { video: Tensor; labels: Tensor[] }) {
        const r = step.run(b);
        return { loss: r.loss, lr: r.lr, ...r.metrics };
      },
      evaluate() {
        accuracy = classifierAccuracy(clf, held);
        return Object.fromEntries(Object.entries(accuracy).map(([k, v]) => [`acc_${k}`, v]));
      },
    },
    {
      runDir: o.runDir,
      totalSteps: o.steps,
      batches,
      config: {
        model: { kind: 'video-classifier', config: cfg },
        data: { ...source.describe, size: o.size, frames: o.frames, seed: o.seed },
        train: { steps: o.steps, batch: o.batchSize, lr: o.lr ?? 3e-3 },
      },
      evalEvery: o.evalEvery ?? Math.max(25, Math.round(o.steps / 5)),
      checkpointEvery: Math.max(50, Math.round(o.steps / 4)),
      quiet: o.quiet,
    },
  );
  accuracy = classifierAccuracy(clf, held);
  const path = join(o.runDir, 'classifier.safetensors');
  saveVideoClassifier(path, clf, { accuracy: JSON.stringify(accuracy), held_out: String(held.shape[0]) });
  return { classifier: clf, accuracy, path };
}

/** Weights by name, with the config (and any extra notes) in the safetensors metadata; written atomically. */
export function saveVideoClassifier(path: string, clf: VideoClassifier, extra: Record<string, string> = {}): void {
  saveTensors(path, clf.stateDict(), { ...extra, format: 'vtok-video-classifier', config: JSON.stringify(clf.cfg) });
}

export function loadVideoClassifier(path: string): { classifier: VideoClassifier; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new VtokError('no such classifier weights file', path);
  const { tensors, metadata } = loadTensors(path);
  if (metadata.format !== 'vtok-video-classifier' || !metadata.config)
    throw new VtokError('not a vtok video classifier (no "config" in the safetensors metadata)', path);
  let cfg: ClassifierConfig;
  try {
    cfg = JSON.parse(metadata.config);
  } catch {
    throw new VtokError('the classifier config in the metadata is not valid JSON', path);
  }
  const clf = new VideoClassifier(cfg);
  clf.loadStateDict(tensors, { source: path });
  clf.eval();
  return { classifier: clf, metadata };
}
