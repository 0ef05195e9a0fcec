import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  captionedMnistSource,
  classifierFeatures,
  classifierPredictions,
  loadVideoClassifier,
  trainVideoClassifier,
  type VideoClassifier,
} from '../../classifier/video-classifier.js';
import * as E from '../../engine/core.js';
import { type ClipTensor, type Frame, gridFrame, tensorToClips } from '../../io/frame.js';
import { writePng, writeVideo } from '../../io/video.js';
import { bootstrapFrechet } from '../../metrics/frechet.js';
import { meanCapped, PSNR_CAP, psnr } from '../../metrics/psnr.js';
import { ssimFrame } from '../../metrics/ssim.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError } from '../../util/errors.js';
import { checkT2vBudget, resolveT2vBudget, type T2vBudget } from './budget.js';
import { checkCheckpoint, describeCheckpoint } from './checkpoint.js';
import { HELD_SPLITS, type HeldSplit, type LabelledSet, loadClips, realClips, saveClips, withLabels } from './data.js';
import { clipRange, frameRange, joinClips } from '../../io/clip.js';
import type { StudyGenerator } from './generator.js';
import {
  type Accuracy,
  type FaithfulnessRow,
  type FramePrediction,
  type FramePredictionRow,
  t2vMarkdown,
  type T2vResults,
  type TextUse,
} from './report.js';
import { accuracy, accuracyOf, pairedDifference, type Readings, readings } from './scores.js';

export { T2V_BUDGETS, type T2vBudget } from './budget.js';
export { type Sampling, type StudyGenerator, studyGenerator } from './generator.js';
export { t2vMarkdown, type T2vResults } from './report.js';

/**
 * The text-to-video study at small scale (VideoPoet §5, issue 14 §7), on captioned Moving MNIST. One function per
 * stage; each leaves its outputs in the study directory and is skipped when they exist, so re-running the same
 * command continues an interrupted study:
 *
 *   1. classifier        a 3D CNN trained on real captioned clips reads digit and axis of motion
 *   2. faithfulness      n clips from the n held-out captions of each split at each CFG scale; n from the same
 *                        captions with the text hidden (CFG's unconditional stream); n from the uncond task
 *   3. scores            the classifier's digit/axis accuracy on each set and on the captions' real clips; Fréchet
 *                        distance (n vs n, bootstrapped) to those real clips, beside n other real clips; with text
 *                        against text hidden, paired by caption
 *   4. frame prediction  first latent frame(s) of real clips given, the rest predicted; PSNR/SSIM per future frame
 *                        against the truth, beside repeating the last given frame
 *   5. long video        text-to-video clips extended several times; is the last segment read as the first?
 *   6. report            results.json, results.md, sample grids (PNG) and a GIF
 */
export interface T2vStudyOptions {
  /** The model (a StudyGenerator) and what to call it in the report (its directory). */
  generator: StudyGenerator;
  model: string;
  out: string;
  budget: string | T2vBudget;
  seed?: number;
  quiet?: boolean;
  log?: (line: string) => void;
}

interface Study {
  out: string;
  b: T2vBudget & { name: string };
  seed: number;
  gen: StudyGenerator;
  quiet?: boolean;
  log(line: string): void;
  timings: Record<string, number>;
  timed<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const writeJson = (path: string, x: unknown) => writeFileAtomic(path, JSON.stringify(x, null, 2));

export async function runT2vStudy(o: T2vStudyOptions): Promise<T2vResults> {
  const s = openStudy(o);
  const { clf, steps } = await trainClassifier(s);
  const n = s.b.clips;
  const real = Object.fromEntries(
    HELD_SPLITS.map((sp) => [sp, realClips(sp, { start: 0, count: n }, s.gen.clip)]),
  ) as Record<HeldSplit, LabelledSet>;
  const sets = await generateFaithfulness(s, real);
  const scores = scoreFaithfulness(s, clf, real, sets);
  const fp = await framePrediction(s, real.test);
  const long = await longVideo(s, clf, real.test);
  const validation = s.gen.validation;
  const results: T2vResults = {
    study: 't2v',
    model: o.model,
    budget: s.b,
    seed: s.seed,
    clip: s.gen.clip,
    checkpoint: {
      chosen_on: describeCheckpoint(validation),
      validation: validation ?? null,
      recorded: validation !== undefined,
    },
    classifier: { feature_dim: clf.cfg.featureDim, steps, real: scores.real },
    faithfulness: { clips: n, seed: faithfulnessSeed(s), bootstrap: s.b.bootstrap, rows: scores.rows },
    text_use: scores.text_use,
    frame_prediction: fp,
    long_video: long,
    timings_s: s.timings,
  };
  await writeReport(s, results, real.test, sets);
  return results;
}

/** The study directory, checked to belong to this model, budget and seed (a new one records them). */
function openStudy(o: T2vStudyOptions): Study {
  const b = resolveT2vBudget(o.budget);
  checkT2vBudget(b);
  checkCheckpoint(o.generator.validation, o.model);
  const seed = o.seed ?? 0;
  mkdirSync(o.out, { recursive: true });
  const studyPath = join(o.out, 'study.json');
  const identity = { study: 't2v', model: o.model, clip: o.generator.clip, budget: b, seed };
  if (existsSync(studyPath)) {
    if (JSON.stringify(readJson(studyPath)) !== JSON.stringify(identity))
      throw new VtokError(
        'this study directory was started with another model, budget or seed; use a new --out directory',
        o.out,
      );
  } else {
    writeJson(studyPath, identity);
  }
  // timings add up over interrupted and resumed runs, so the report times every stage once
  const timingsPath = join(o.out, 'timings.json');
  const timings: Record<string, number> = existsSync(timingsPath) ? readJson(timingsPath) : {};
  return {
    out: o.out,
    b,
    seed,
    gen: o.generator,
    quiet: o.quiet,
    timings,
    log:
      o.log ??
      ((line: string) => {
        if (!o.quiet) process.stderr.write(`${line}\n`);
      }),
    async timed(name, fn) {
      const t0 = Date.now();
      const r = await fn();
      timings[name] = (timings[name] ?? 0) + (Date.now() - t0) / 1000;
      writeJson(timingsPath, timings);
      return r;
    },
  };
}

/** 1. The classifier, trained on real one-digit captioned clips of the model's clip size (training digits). */
async function trainClassifier(s: Study): Promise<{ clf: VideoClassifier; steps: number }> {
  const { b } = s;
  const dir = join(s.out, 'classifier');
  const path = join(dir, 'classifier.safetensors');
  if (existsSync(path)) {
    s.log('[1/6] classifier: done');
  } else {
    s.log(`[1/6] classifier: ${b.classifier.steps} steps of ${b.classifier.batch} real captioned clips`);
    E.seed(s.seed);
    await s.timed('classifier', () =>
      trainVideoClassifier({
        runDir: dir,
        steps: b.classifier.steps,
        batchSize: b.classifier.batch,
        lr: b.classifier.lr,
        width: b.classifier.width,
        featureDim: b.classifier.featureDim,
        stemStride: b.classifier.stemStride,
        seed: s.seed,
        frames: s.gen.clip.frames,
        size: s.gen.clip.height,
        // the run's own log (the report's real figures are the study's real clips)
        heldOut: Math.min(256, b.clips),
        quiet: s.quiet,
        // every digit×motion pair: trained on the seen ones only, it would read pairs, not digits (see
        // captionedMnistSource)
        source: captionedMnistSource({ frames: s.gen.clip.frames, channels: s.gen.clip.channels, allPairs: true }),
      }),
    );
  }
  return { clf: loadVideoClassifier(path).classifier, steps: b.classifier.steps };
}

/** Every generated set of the faithfulness stage has this seed, so the sets pair clip by clip (same draws). */
const faithfulnessSeed = (s: Study) => s.seed * 1000;

interface GeneratedSet {
  /** File stem. */
  name: string;
  arm: string;
  cfg: number | null;
  /** The splits whose captions it is read against. */
  splits: HeldSplit[];
  clips: ClipTensor;
}

/**
 * 2. Per split and CFG scale, clips from the split's n captions; then n clips from the test captions with the text
 * hidden, and n from the uncond task (when the model has it). Neither of the last two can depend on the captions (a
 * hidden text slot has one length and no visible key), so each is one set, read against both splits. One seed for
 * all: clip i of every set has the same sampler draws. One file per set.
 */
async function generateFaithfulness(s: Study, real: Record<HeldSplit, LabelledSet>): Promise<GeneratedSet[]> {
  const n = s.b.clips,
    seed = faithfulnessSeed(s);
  const dir = join(s.out, 'faithfulness');
  mkdirSync(dir, { recursive: true });
  type Plan = Omit<GeneratedSet, 'clips'> & { what: string; draw: () => ClipTensor };
  const plan: Plan[] = [];
  for (const cfg of s.b.cfgScales)
    for (const split of HELD_SPLITS)
      plan.push({
        name: `cfg${cfg}-${split}`,
        arm: `cfg${cfg}`,
        cfg,
        splits: [split],
        what: `t2v CFG ${cfg}, ${split} captions`,
        draw: () => s.gen.textToVideo(real[split].captions, { cfg, seed }),
      });
  plan.push({
    name: 't2v-hidden',
    arm: 't2v-hidden',
    cfg: null,
    splits: [...HELD_SPLITS],
    what: 't2v with the text hidden',
    draw: () => s.gen.textToVideo(real.test.captions, { cfg: 1, seed, hideText: true }),
  });
  if (s.gen.tasks.includes('uncond'))
    plan.push({
      name: 'uncond-task',
      arm: 'uncond-task',
      cfg: null,
      splits: [...HELD_SPLITS],
      what: 'the uncond task',
      draw: () => s.gen.unconditional(n, { seed }),
    });
  const sets: GeneratedSet[] = [];
  for (const { what, draw, ...p } of plan) {
    const path = join(dir, `${p.name}.safetensors`);
    if (existsSync(path)) {
      s.log(`[2/6] ${what}: done`);
    } else {
      s.log(`[2/6] ${what}: generating ${n} clips`);
      const clips = await s.timed(`generate-${p.name}`, draw);
      saveClips(path, clips, { arm: p.arm, splits: p.splits.join(','), seed: String(seed) });
    }
    sets.push({ ...p, clips: loadClips(path) });
  }
  return sets;
}

interface Scores {
  real: Record<HeldSplit, Accuracy>;
  rows: FaithfulnessRow[];
  text_use: TextUse[];
}

/**
 * 3. Per split: the classifier on the captions' real clips; each set's accuracy against the captions and Fréchet
 * distance to those real clips (n vs n, bootstrapped), beside n other real clips of the split; each CFG scale's set
 * against the text-hidden one, caption by caption.
 */
function scoreFaithfulness(
  s: Study,
  clf: VideoClassifier,
  real: Record<HeldSplit, LabelledSet>,
  sets: GeneratedSet[],
): Scores {
  const path = join(s.out, 'faithfulness.json');
  if (existsSync(path)) {
    s.log('[3/6] scores: done');
    return readJson(path);
  }
  const n = s.b.clips,
    dim = clf.cfg.featureDim;
  s.log(`[3/6] scores: classifier accuracy, Fréchet distances (${s.b.bootstrap} bootstrap replicates each)`);
  const features = new Map(sets.map((g) => [g.name, classifierFeatures(clf, g.clips)]));
  const hidden = sets.find((g) => g.arm === 't2v-hidden')!;
  const out: Scores = { real: {} as Record<HeldSplit, Accuracy>, rows: [], text_use: [] };
  let replicateSeed = s.seed * 1000 + 900;
  const frechet = (x: Float32Array, target: Float32Array) =>
    bootstrapFrechet(x, target, dim, { replicates: s.b.bootstrap, seed: replicateSeed++ });
  for (const split of HELD_SPLITS) {
    s.log(`[3/6] scores: split ${split}`);
    const target = real[split],
      targetFeatures = classifierFeatures(clf, target);
    out.real[split] = accuracy(clf, target);
    // the real-vs-real reference: the next n clips of the split
    const other = realClips(split, { start: n, count: n }, s.gen.clip);
    out.rows.push({
      arm: 'real-other',
      split,
      cfg: null,
      accuracy: null,
      frechet: frechet(classifierFeatures(clf, other), targetFeatures),
    });
    const read = new Map<string, Readings>();
    for (const g of sets.filter((x) => x.splits.includes(split))) {
      const r = readings(clf, g.clips, target);
      read.set(g.name, r);
      out.rows.push({
        arm: g.arm,
        split,
        cfg: g.cfg,
        accuracy: accuracyOf(r),
        frechet: frechet(features.get(g.name)!, targetFeatures),
      });
    }
    const h = read.get(hidden.name)!;
    for (const g of sets.filter((x) => x.cfg !== null && x.splits.includes(split))) {
      const r = read.get(g.name)!;
      out.text_use.push({
        split,
        cfg: g.cfg!,
        pairs: n,
        digit: pairedDifference(r.digit, h.digit),
        axis: pairedDifference(r.axis, h.axis),
        both: pairedDifference(r.both, h.both),
      });
    }
  }
  writeJson(path, out);
  return out;
}

/**
 * 4. Frame prediction, given 1 or 2 latent frames: PSNR/SSIM per future frame of the prediction, of repeating the last
 * given frame, of the tokenizer.
 */
async function framePrediction(s: Study, test: LabelledSet): Promise<T2vResults['frame_prediction']> {
  const out: FramePrediction[] = [];
  for (const k of s.b.fp.condFrames) out.push(await framePredictionGiven(s, test, k));
  return out;
}

async function framePredictionGiven(s: Study, test: LabelledSet, k: number): Promise<FramePrediction> {
  const { b } = s;
  const name = `frame-prediction-${k}`;
  const path = join(s.out, `${name}.json`);
  if (existsSync(path)) {
    s.log(`[4/6] frame prediction (${k} latent frame(s) given): done`);
    return readJson(path);
  }
  const truth = clipRange(test, 0, b.fp.clips);
  const given = s.gen.givenFrames(k),
    T = s.gen.clip.frames;
  if (given >= T)
    throw new VtokError(
      `frame prediction: ${k} latent frame(s) cover ${given} of the clip's ${T} frames; nothing is left to predict`,
    );
  const seed = s.seed * 1000 + 500 + (k - 1);
  const clipsPath = join(s.out, `${name}.safetensors`);
  if (!existsSync(clipsPath)) {
    s.log(`[4/6] frame prediction: ${b.fp.clips} clips, ${given} frame(s) given`);
    saveClips(clipsPath, await s.timed(name, () => s.gen.predictFrames(truth, { condFrames: k, seed })));
  }
  const predicted = loadClips(clipsPath);
  const recon = s.gen.reconstruct(truth);
  const repeat = joinClips(
    Array.from({ length: T }, (_, t) => frameRange(truth, Math.min(t, given - 1), Math.min(t, given - 1) + 1)),
    'time',
  );
  const [tc, pc, rc, kc] = [truth, predicted, repeat, recon].map((c) => tensorToClips(c.data, c.shape));
  const per_frame: FramePredictionRow[] = [];
  for (let t = given; t < T; t++) {
    const score = (x: Frame[][]) => ({
      psnr: meanCapped(tc!.map((clip, i) => Math.min(PSNR_CAP, psnr(clip[t]!.data, x[i]![t]!.data)))),
      ssim: tc!.reduce((acc, clip, i) => acc + ssimFrame(clip[t]!, x[i]![t]!), 0) / tc!.length,
    });
    const [p, r, kk] = [pc!, rc!, kc!].map(score);
    per_frame.push({
      frame: t,
      psnr: { predicted: p!.psnr, repeat_last: r!.psnr, reconstruction: kk!.psnr },
      ssim: { predicted: p!.ssim, repeat_last: r!.ssim, reconstruction: kk!.ssim },
    });
  }
  const result = { clips: b.fp.clips, cond_latent_frames: k, given_frames: given, seed, per_frame };
  writeJson(path, result);
  return result;
}

/** 5. Long video: t2v clips, then `extensions` extensions, each saved (a stopped study resumes at the next one). */
async function longVideo(s: Study, clf: VideoClassifier, test: LabelledSet): Promise<T2vResults['long_video']> {
  const { b } = s;
  const path = join(s.out, 'long-video.json');
  if (existsSync(path)) {
    s.log('[5/6] long video: done');
    return readJson(path);
  }
  const dir = join(s.out, 'long-video');
  mkdirSync(dir, { recursive: true });
  const seed = s.seed * 1000 + 700;
  const step = (k: number) => join(dir, `extension-${k}.safetensors`);
  const prompts = test.captions.slice(0, b.long.clips);
  for (let k = 0; k <= b.long.extensions; k++) {
    if (existsSync(step(k))) continue;
    s.log(
      `[5/6] long video: ${k === 0 ? `${b.long.clips} text-to-video clips` : `extension ${k} of ${b.long.extensions}`}`,
    );
    const video = await s.timed('long-video', () =>
      k === 0
        ? s.gen.textToVideo(prompts, { cfg: b.long.cfg, seed })
        : s.gen.extend(loadClips(step(k - 1)), { condFrames: 1, seed: seed + k }),
    );
    saveClips(step(k), video, { extensions: String(k), captions: JSON.stringify(prompts) });
  }
  const video = loadClips(step(b.long.extensions));
  const F = s.gen.clip.frames,
    T = video.shape[2];
  const asked = withLabels(clipRange(test, 0, b.long.clips), test, b.long.clips);
  const first = { ...asked, ...frameRange(video, 0, F) },
    last = { ...asked, ...frameRange(video, T - F, T) };
  const [fd, fa] = classifierPredictions(clf, first),
    [ld, la] = classifierPredictions(clf, last);
  const same = (x: Int32Array, y: Int32Array) => x.reduce((n, v, i) => n + +(v === y[i]), 0) / x.length;
  const result = {
    clips: b.long.clips,
    extensions: b.long.extensions,
    frames: T,
    cfg: b.long.cfg,
    seed,
    first_segment: accuracy(clf, first),
    last_segment: accuracy(clf, last),
    same_reading: { digit: same(fd!, ld!), axis: same(fa!, la!) },
  };
  writeJson(path, result);
  return result;
}

/** Rows of clips, frames left to right, scaled up for viewing. */
function clipRows(clips: ClipTensor, rows: number, scale = 2): Frame {
  const n = Math.min(rows, clips.shape[0]);
  return upscale(
    gridFrame(tensorToClips(clipRange(clips, 0, n).data, [n, ...clips.shape.slice(1)]).flat(), {
      columns: clips.shape[2],
      gap: 2,
    }),
    scale,
  );
}

function upscale(f: Frame, k: number): Frame {
  const w = f.width * k,
    h = f.height * k,
    data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / k) * f.width + Math.floor(x / k)) * 3;
      data.set(f.data.subarray(src, src + 3), (y * w + x) * 3);
    }
  return { width: w, height: h, data };
}

/** 6. results.json, results.md, PNG grids and a GIF of real and generated clips side by side. */
async function writeReport(s: Study, r: T2vResults, test: LabelledSet, sets: GeneratedSet[]): Promise<void> {
  writeJson(join(s.out, 'results.json'), r);
  writeFileAtomic(join(s.out, 'results.md'), t2vMarkdown(r));
  const rows = 4;
  const shownSets = sets.filter((g) => g.splits.includes('test'));
  const shown = [
    clipRange(test, 0, Math.min(rows, test.shape[0])),
    ...shownSets.map((g) => clipRange(g.clips, 0, Math.min(rows, g.clips.shape[0]))),
  ];
  for (const g of sets) writePng(join(s.out, `samples-${g.name}.png`), clipRows(g.clips, 8));
  for (const k of s.b.fp.condFrames)
    writePng(
      join(s.out, `frame-prediction-${k}.png`),
      clipRows(loadClips(join(s.out, `frame-prediction-${k}.safetensors`)), 8),
    );
  writePng(
    join(s.out, 'long-video.png'),
    clipRows(loadClips(join(s.out, 'long-video', `extension-${s.b.long.extensions}.safetensors`)), 8),
  );
  // GIF: one column per set (real, then each CFG scale, text hidden, uncond task), one row per test caption
  const n = Math.min(...shown.map((c) => c.shape[0]));
  const clips = shown.map((c) => tensorToClips(c.data, c.shape));
  const frames = Array.from({ length: s.gen.clip.frames }, (_, t) =>
    upscale(
      gridFrame(Array.from({ length: n }, (_, i) => clips.map((c) => c[i]![t]!)).flat(), {
        columns: clips.length,
        gap: 2,
      }),
      2,
    ),
  );
  await writeVideo(join(s.out, 'samples.gif'), frames, { fps: 4 });
  s.log(
    `[6/6] wrote ${join(s.out, 'results.json')}, results.md, samples-*.png, frame-prediction-<k>.png, long-video.png ` +
      `and samples.gif (columns: real, ${shownSets.map((g) => g.arm).join(', ')})`,
  );
}
