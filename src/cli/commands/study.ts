import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Batch } from '../../data/dataset.js';
import { createLoader } from '../../data/loader.js';
import type { DatasetSpec } from '../../data/open.js';
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { evaluateNll, Gpt, type GptConfig, sample, tokenSequences, type TokenSequences } from '../../generation/gpt.js';
import { gptTask, lmBatches } from '../../generation/train.js';
import { type Frame, gridFrame, tensorToClips } from '../../io/frame.js';
import { writePng } from '../../io/video.js';
import { FeatureStats, frechetDistance, type GaussianStats } from '../../metrics/frechet.js';
import { psnrFromMse } from '../../metrics/psnr.js';
import { evaluateReconstruction } from '../../metrics/reconstruction.js';
import { codebookUsage } from '../../metrics/tokens.js';
import { classifierFeatures, loadVideoClassifier, trainVideoClassifier, type VideoClassifier } from '../../metrics/video-classifier.js';
import { loadTensors, saveTensors } from '../../nn/weights.js';
import '../../tokenizers/kinds.js';
import { loadTokenizer } from '../../tokenizers/registry.js';
import type { LarpTokenizer } from '../../tokenizers/larp/tokenizer.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
import { trainerFor } from '../../train/kinds/index.js';
import { trainLoop } from '../../train/loop.js';
import { tokenizerTask } from '../../train/tokenizer-task.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError, check } from '../../util/errors.js';
import { type Progress, progress } from '../../util/progress.js';
import { Rng } from '../../util/rng.js';
import { rdMarkdown, runCodecRdStudy } from '../../studies/codec-rd/index.js';
import { SHIPPED_NATURAL_MODEL } from './demo.js';


/**
 * `vtok study larp-prior`: the LARP paper's claim at small scale — that training the tokenizer with a learned
 * autoregressive prior makes its tokens easier for a second-stage AR model, at little cost in reconstruction.
 *
 *   1. classifier   vtok's own 3D-CNN video classifier on labelled synthetic clips (features for Fréchet distances)
 *   2. larp-prior, larp-noprior   LARP with and without the prior: same steps, batch, seed, data and initial weights
 *   3. tokens       both tokenizers encode the same training and held-out clips
 *   4. gpt-prior, gpt-noprior     the same small GPT trained on each token set with the same budget
 *   5. eval         per arm: reconstruction PSNR/SSIM on held-out clips, the GPT's held-out NLL per token, and the
 *                   Fréchet distance between clips decoded from GPT samples and held-out clips
 *   6. report       results.json, results.md, sample grids (PNG)
 *
 * Every stage leaves its outputs in the study directory and is skipped when they exist (training stages resume
 * from their checkpoints), so re-running the same command continues an interrupted study.
 */

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
  gpt: { steps: number; batch: number; nLayer: number; nHead: number; nEmbd: number; dropout: number; lr: number; evalEvery: number };
  /** Clips generated per arm (compared with as many held-out clips). */
  samples: number;
  temperature: number;
}

const TINY: StudyBudget = {
  size: 32, frames: 8, tokens: 32, trainClips: 8192, heldClips: 512,
  larp: { preset: 'tiny', steps: 3000, batch: 8, evalEvery: 500 },
  classifier: { steps: 300, batch: 32, width: 16, featureDim: 64, heldOut: 512 },
  gpt: { steps: 800, batch: 64, nLayer: 2, nHead: 4, nEmbd: 128, dropout: 0.1, lr: 1e-3, evalEvery: 200 },
  samples: 512, temperature: 1,
};

export const STUDY_BUDGETS: Record<string, StudyBudget> = {
  /** A few steps of everything, for tests of the pipeline (numbers mean nothing). */
  micro: {
    size: 16, frames: 4, tokens: 8, trainClips: 32, heldClips: 16,
    larp: { preset: 'tiny', steps: 3, batch: 2, evalEvery: 0 },
    classifier: { steps: 3, batch: 8, width: 8, featureDim: 8, heldOut: 16 },
    gpt: { steps: 4, batch: 8, nLayer: 1, nHead: 2, nEmbd: 32, dropout: 0, lr: 1e-3, evalEvery: 0 },
    samples: 16, temperature: 1,
  },
  /** About 13 minutes on one thread of a 2-core CPU: 32×32×8 clips, the tiny LARP preset, a 2-layer GPT of width 128. */
  tiny: TINY,
  /** The tiny budget with 4× the tokenizer steps and 2× the GPT steps (about 35 minutes on one thread). */
  'tiny-long': { ...TINY, larp: { ...TINY.larp, steps: 12000, evalEvery: 2000 }, gpt: { ...TINY.gpt, steps: 1600, evalEvery: 400 } },
};

export const ARMS = [
  { name: 'prior', prior: true, label: 'LARP with prior' },
  { name: 'noprior', prior: false, label: 'LARP without prior' },
] as const;
type ArmName = (typeof ARMS)[number]['name'];

export interface StudyOptions {
  out: string;
  budget: string | StudyBudget;
  seed?: number;
  quiet?: boolean;
  /** Stage messages (default: stderr unless quiet). */
  log?: (line: string) => void;
}

export interface ArmResult {
  recon: { psnr: number; ssim: number; codebook_usage: number; perplexity: number; frechet: number };
  tokens: { vocab_size: number; codebook_usage_train: number; unigram_bits: number };
  ar: { nll_nats: number; nll_bits: number; perplexity: number; per_position_nats: number[] };
  generation: { frechet: number; samples: number };
  timings_s: Record<string, number>;
}

export interface StudyResults {
  study: 'larp-prior';
  budget: StudyBudget & { name: string };
  seed: number;
  classifier: { accuracy: Record<string, number>; feature_dim: number; held_out: number };
  reference: {
    frechet_real_vs_real: number;
    /** PSNR on the held-out clips of predicting, for every clip, the per-pixel mean of training clips: a tokenizer below it has learned nothing clip-specific. */
    psnr_mean_clip: number;
    /**
     * PSNR on the held-out clips of replacing each clip by its own mean colour, and each 4×8×8 patch (the tokenizer's
     * patch) by its mean colour: what a tokenizer scores that keeps only a clip's colour, or only coarse colour per patch.
     */
    psnr_clip_colour: number;
    psnr_patch_colour: number;
  };
  arms: Record<ArmName, ArmResult>;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** The step of a run's latest checkpoint (0 when it has none). */
function finishedSteps(runDir: string): number {
  const p = join(runDir, 'checkpoints', 'latest.json');
  return existsSync(p) ? Number(readJson(p).step ?? 0) : 0;
}

function resolveBudget(b: string | StudyBudget): StudyBudget & { name: string } {
  if (typeof b !== 'string') return { ...b, name: 'custom' };
  const budget = STUDY_BUDGETS[b];
  if (!budget) throw new VtokError(`unknown study budget "${b}" (known: ${Object.keys(STUDY_BUDGETS).join(', ')})`);
  return { ...budget, name: b };
}

function checkBudget(b: StudyBudget): void {
  check(b.samples <= b.heldClips, `budget: ${b.samples} generated clips need at least as many held-out clips (have ${b.heldClips})`);
  check(b.samples <= b.trainClips, `budget: ${b.samples} samples need at least as many training clips for the real-vs-real reference`);
  check(b.gpt.batch <= b.trainClips && b.larp.batch <= b.trainClips, 'budget: batch sizes must not exceed the training clips');
}

/** The study's data: synthetic clips labelled by motion (straight-line motion, no bounces), train and held-out seeds. */
function dataSpec(b: StudyBudget, split: 'train' | 'held', seed: number): DatasetSpec {
  return { kind: 'synthetic', labelBy: 'motion', frames: b.frames, height: b.size, width: b.size, length: split === 'train' ? b.trainClips : b.heldClips, seed: split === 'train' ? seed : seed + 1 };
}

/** Every clip of a split, in order, batch by batch. */
async function* clipBatches(spec: DatasetSpec, batchSize: number, limit = Infinity): AsyncGenerator<Batch> {
  const loader = await createLoader(spec, { batchSize, shuffle: false, epochs: 1 });
  let n = 0;
  try {
    for await (const b of loader) {
      yield b;
      n += b.shape[0];
      if (n >= limit) break;
    }
  } finally {
    await loader.close();
  }
}

async function heldOutClips(b: StudyBudget, seed: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of clipBatches(dataSpec(b, 'held', seed), 64)) out.push(batch);
  return out;
}

/** Concatenates the first `n` clips of batches into one N×C×T×H×W array. */
function firstClips(batches: Batch[], n: number): { data: Float32Array; shape: [number, number, number, number, number] } {
  const [, C, T, H, W] = batches[0]!.shape;
  const per = C * T * H * W;
  const data = new Float32Array(n * per);
  let k = 0;
  for (const b of batches) {
    const take = Math.min(b.shape[0], n - k);
    data.set(b.data.subarray(0, take * per), k * per);
    k += take;
    if (k >= n) break;
  }
  check(k === n, `need ${n} clips, have ${k}`);
  return { data, shape: [n, C, T, H, W] };
}

function stats(clf: VideoClassifier, clips: { data: Float32Array; shape: readonly number[] }): GaussianStats {
  return new FeatureStats(clf.cfg.featureDim).add(classifierFeatures(clf, clips)).stats();
}

/** Decodes token ids [n, tokens] to clips [n, C, T, H, W] in [-1, 1], 64 at a time (the last batch padded). */
function decodeAll(tok: Tokenizer, ids: Int32Array, n: number, tokens: number, clipShape: number[]): { data: Float32Array; shape: [number, number, number, number, number] } {
  const per = clipShape.reduce((a, c) => a * c, 1);
  const B = Math.min(64, n);
  const data = new Float32Array(n * per);
  for (let s = 0; s < n; s += B) {
    const rows = Math.min(B, n - s);
    const chunk = new Int32Array(B * tokens);
    chunk.set(ids.subarray(s * tokens, (s + rows) * tokens));
    const video = tok.decode(E.concrete(chunk, [B, tokens], 'int32'));
    data.set((video.data as Float32Array).subarray(0, rows * per), s * per);
  }
  return { data, shape: [n, ...clipShape] as [number, number, number, number, number] };
}

/**
 * Mean squared error (in 8-bit units) of replacing every t×h×w block of each channel of each clip by the block's mean:
 * the error of the best reconstruction that keeps only the mean colour per block.
 */
export function blockMeanMse(clips: { data: Float32Array; shape: readonly number[] }, block: readonly [number, number, number]): number {
  const [n, c, T, H, W] = clips.shape as [number, number, number, number, number];
  const [bt, bh, bw] = block;
  check(T % bt === 0 && H % bh === 0 && W % bw === 0, `block ${block.join('×')} does not tile ${T}×${H}×${W} clips`);
  let se = 0;
  for (let k = 0; k < n * c; k++) {
    const base = k * T * H * W;
    for (let t0 = 0; t0 < T; t0 += bt) for (let y0 = 0; y0 < H; y0 += bh) for (let x0 = 0; x0 < W; x0 += bw) {
      let sum = 0, sq = 0;
      for (let t = t0; t < t0 + bt; t++) for (let y = y0; y < y0 + bh; y++) for (let x = x0; x < x0 + bw; x++) {
        const v = clips.data[base + (t * H + y) * W + x]! * 127.5;
        sum += v;
        sq += v * v;
      }
      se += sq - (sum * sum) / (bt * bh * bw);
    }
  }
  return se / clips.data.length;
}

/** Encodes batches of clips to ids [N, tokens] (batches padded to a fixed size). */
function encodeBatch(tok: Tokenizer, b: Batch, batchSize: number, tokens: number): Int32Array {
  const [n, ...rest] = b.shape;
  const per = rest.reduce((a, c) => a * c, 1);
  const chunk = new Float32Array(batchSize * per);
  chunk.set(b.data.subarray(0, n * per));
  const ids = tok.encode(E.concrete(chunk, [batchSize, ...rest], 'float32'));
  return Int32Array.from(E.toArray(ids).slice(0, n * tokens));
}

/** Cross-entropy (bits/token) of held-out tokens under the training tokens' unigram distribution (add-one smoothing). */
function unigramBits(train: Int32Array, held: Int32Array, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  for (const t of train) counts[t]!++;
  const total = train.length + vocab;
  let bits = 0;
  for (const t of held) bits -= Math.log2(counts[t]! / total);
  return bits / held.length;
}

/** Rows of clips (one clip per row, frames left to right), scaled up `scale`× for viewing. */
function clipGrid(clips: { data: Float32Array; shape: readonly number[] }, rows: number, scale = 2): Frame {
  const frames = tensorToClips(clips.data.subarray(0, rows * (clips.data.length / clips.shape[0]!)), [rows, ...clips.shape.slice(1)]);
  const g = gridFrame(frames.flat(), { columns: clips.shape[2]!, gap: 1 });
  return upscale(g, scale);
}

function upscale(f: Frame, s: number): Frame {
  const w = f.width * s, h = f.height * s, data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(f.data.subarray(((Math.floor(y / s) * f.width) + Math.floor(x / s)) * 3, ((Math.floor(y / s) * f.width) + Math.floor(x / s)) * 3 + 3), (y * w + x) * 3);
  return { width: w, height: h, data };
}

/** Panels side by side with a white gap. */
function sideBySide(panels: Frame[], gap = 8): Frame {
  const h = Math.max(...panels.map((p) => p.height));
  const w = panels.reduce((s, p) => s + p.width, 0) + gap * (panels.length - 1);
  const data = new Uint8Array(w * h * 3).fill(255);
  let x0 = 0;
  for (const p of panels) {
    for (let y = 0; y < p.height; y++) data.set(p.data.subarray(y * p.width * 3, (y + 1) * p.width * 3), (y * w + x0) * 3);
    x0 += p.width + gap;
  }
  return { width: w, height: h, data };
}

export async function runLarpPriorStudy(o: StudyOptions): Promise<StudyResults> {
  const budget = resolveBudget(o.budget);
  checkBudget(budget);
  const seed = o.seed ?? 0;
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(`${line}\n`); });
  const out = o.out;
  const studyPath = join(out, 'study.json');
  const identity = { study: 'larp-prior', budget, seed };
  if (existsSync(studyPath)) {
    const saved = readJson(studyPath);
    if (JSON.stringify(saved) !== JSON.stringify(identity)) throw new VtokError('this study directory was started with another budget or seed; use a new --out directory', out);
  } else {
    writeFileAtomic(studyPath, JSON.stringify(identity, null, 2));
  }
  const b = budget;
  const clipShape = [3, b.frames, b.size, b.size];
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    const t0 = Date.now();
    const r = await fn();
    timings[name] = (timings[name] ?? 0) + (Date.now() - t0) / 1000;
    return r;
  };

  // 1. the classifier whose features give the Fréchet distances
  const clfDir = join(out, 'classifier');
  const clfPath = join(clfDir, 'classifier.safetensors');
  let clf: VideoClassifier;
  let clfAccuracy: Record<string, number>;
  if (existsSync(clfPath)) {
    const l = loadVideoClassifier(clfPath);
    clf = l.classifier;
    clfAccuracy = JSON.parse(l.metadata.accuracy ?? '{}');
    log(`[1/6] classifier: done (held-out accuracy ${JSON.stringify(clfAccuracy)})`);
  } else {
    log(`[1/6] classifier: ${b.classifier.steps} steps of ${b.classifier.batch} synthetic clips (motion + shape labels)`);
    E.seed(seed + 2);
    const r = await timed('classifier', () => trainVideoClassifier({
      runDir: clfDir, steps: b.classifier.steps, batchSize: b.classifier.batch, seed: seed + 2, frames: b.frames, size: b.size,
      width: b.classifier.width, featureDim: b.classifier.featureDim, heldOut: b.classifier.heldOut, quiet: o.quiet,
    }));
    clf = r.classifier;
    clfAccuracy = r.accuracy;
    log(`      held-out accuracy ${JSON.stringify(clfAccuracy)}`);
  }

  // 2. LARP with and without the prior: same seed (identical tokenizer initialisation), data order and steps
  const held = await heldOutClips(b, seed);
  const trainer = trainerFor('larp');
  const preset = trainer.presets[b.larp.preset];
  if (!preset) throw new VtokError(`unknown LARP preset "${b.larp.preset}" (known: ${Object.keys(trainer.presets).join(', ')})`);
  for (const arm of ARMS) {
    const dir = join(out, `larp-${arm.name}`);
    const done = finishedSteps(dir);
    if (done >= b.larp.steps) {
      log(`[2/6] larp-${arm.name}: done (${done} steps)`);
      continue;
    }
    log(`[2/6] larp-${arm.name}: ${b.larp.steps} steps of ${b.larp.batch} clips${done ? ` (resuming at ${done})` : ''}`);
    E.seed(seed);
    const modelConfig = trainer.modelConfig(preset, { size: b.size, frames: b.frames, channels: 3 }, { tokens: b.tokens, prior: arm.prior });
    const model = trainer.build(modelConfig, b.larp.steps);
    E.seed(seed + 1); // the same noise stream from step 0 in both arms (the prior's own initialisation drew extra numbers)
    const first = firstClips(held, Math.min(8, b.heldClips));
    const heldBatch: Batch = { ...first, indices: Int32Array.from({ length: first.shape[0] }, (_, i) => i), epoch: 0 };
    const task = tokenizerTask(model, { lr: preset.lr, steps: b.larp.steps, emaDecay: Math.min(0.999, 1 - 10 / b.larp.steps) }, heldBatch);
    const trainSpec = dataSpec(b, 'train', seed);
    await timed(`larp-${arm.name}`, () => trainLoop(task, {
      runDir: dir,
      totalSteps: b.larp.steps,
      config: {
        model: { kind: 'larp', config: modelConfig },
        data: { name: 'synthetic', labelBy: 'motion', size: b.size, frames: b.frames, channels: 3, clips: b.trainClips },
        train: { preset: b.larp.preset, steps: b.larp.steps, batch: b.larp.batch, lr: preset.lr, seed, gan: false, study: 'larp-prior' },
      },
      batches: (start) => (async function* () {
        const loader = await createLoader(trainSpec, { batchSize: b.larp.batch, seed, epochs: Infinity, dropLast: true, startBatch: start });
        try {
          yield* loader;
        } finally {
          await loader.close();
        }
      })(),
      evalEvery: b.larp.evalEvery,
      checkpointEvery: Math.max(100, Math.round(b.larp.steps / 10)),
      best: { metric: 'psnr', mode: 'max' },
      quiet: o.quiet,
    }));
  }
  // both arms are judged at their final step (EMA weights), not at a best checkpoint
  const tokenizers = Object.fromEntries(ARMS.map((a) => [a.name, loadTokenizer(join(out, `larp-${a.name}`), { which: 'latest' }).tokenizer])) as Record<ArmName, Tokenizer>;
  const vocab = tokenizers.prior.vocabSize;

  // 3. tokens of the training and held-out clips under each tokenizer (one pass over the data for both)
  const tokenPath = (arm: ArmName) => join(out, `tokens-${arm}.safetensors`);
  if (ARMS.every((a) => existsSync(tokenPath(a.name)))) {
    log('[3/6] tokens: done');
  } else {
    log(`[3/6] tokens: encoding ${b.trainClips} training and ${b.heldClips} held-out clips with both tokenizers`);
    await timed('tokens', async () => {
      const B = Math.min(64, b.trainClips);
      const train: Record<string, Int32Array[]> = { prior: [], noprior: [] };
      const bar = progress('encode', Math.ceil(b.trainClips / B), { quiet: o.quiet });
      let k = 0;
      for await (const batch of clipBatches(dataSpec(b, 'train', seed), B)) {
        for (const a of ARMS) train[a.name]!.push(encodeBatch(tokenizers[a.name], batch, B, b.tokens));
        bar.update(++k);
      }
      bar.stop();
      for (const a of ARMS) {
        const heldIds = held.map((batch) => encodeBatch(tokenizers[a.name], batch, Math.min(64, b.heldClips), b.tokens));
        const cat = (parts: Int32Array[]) => {
          const all = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
          let off = 0;
          for (const p of parts) (all.set(p, off), (off += p.length));
          return all;
        };
        const tr = cat(train[a.name]!), he = cat(heldIds);
        saveTensors(tokenPath(a.name), new Map([
          ['train', E.concrete(tr, [tr.length / b.tokens, b.tokens], 'int32')],
          ['held', E.concrete(he, [he.length / b.tokens, b.tokens], 'int32')],
        ]), { tokenizer: `larp-${a.name}`, vocab_size: String(vocab) });
      }
    });
  }
  const tokens = Object.fromEntries(ARMS.map((a) => {
    const { tensors } = loadTensors(tokenPath(a.name));
    const seqs = (name: string): TokenSequences => {
      const t = tensors.get(name);
      if (!t || t.rank !== 2 || t.shape[1] !== b.tokens) throw new VtokError(`no "${name}" token tensor [N, ${b.tokens}]`, tokenPath(a.name));
      return tokenSequences(t.data as Int32Array, t.shape[0]!, t.shape[1]!);
    };
    return [a.name, { train: seqs('train'), held: seqs('held') }];
  })) as Record<ArmName, { train: TokenSequences; held: TokenSequences }>;

  // 4. the same GPT on each token set: ids 0…K−1 are tokens, K is BOS
  const bos = vocab;
  const gptConfig: GptConfig = { vocabSize: vocab + 1, blockSize: b.tokens, nLayer: b.gpt.nLayer, nHead: b.gpt.nHead, nEmbd: b.gpt.nEmbd, dropout: b.gpt.dropout };
  const gpts = {} as Record<ArmName, Gpt>;
  for (const arm of ARMS) {
    const dir = join(out, `gpt-${arm.name}`);
    const done = finishedSteps(dir);
    log(`[4/6] gpt-${arm.name}: ${done >= b.gpt.steps ? `done (${done} steps)` : `${b.gpt.steps} steps of ${b.gpt.batch} sequences${done ? ` (resuming at ${done})` : ''}`}`);
    E.seed(seed + 10);
    const model = new Gpt(gptConfig);
    const opts = { steps: b.gpt.steps, batchSize: b.gpt.batch, lr: b.gpt.lr, seed, bos };
    const train = () => trainLoop(gptTask(model, tokens[arm.name].train, tokens[arm.name].held, opts), {
      runDir: dir,
      totalSteps: b.gpt.steps,
      config: { model: { kind: 'gpt', config: gptConfig }, data: { tokens: `larp-${arm.name}`, train: tokens[arm.name].train.count, bos }, train: { steps: b.gpt.steps, batch: b.gpt.batch, lr: b.gpt.lr, seed } },
      batches: (start) => lmBatches(tokens[arm.name].train, b.gpt.batch, bos, seed, start),
      evalEvery: b.gpt.evalEvery,
      checkpointEvery: Math.max(100, Math.round(b.gpt.steps / 5)),
      quiet: o.quiet,
    });
    // a finished run only loads its weights; only real training is timed
    await (done >= b.gpt.steps ? train() : timed(`gpt-${arm.name}`, train));
    model.eval();
    gpts[arm.name] = model;
  }

  // 5. evaluation
  const heldClips = firstClips(held, b.samples);
  const heldStats = stats(clf, heldClips);
  const refPath = join(out, 'reference.json');
  let reference: StudyResults['reference'];
  if (existsSync(refPath) && readJson(refPath).psnr_patch_colour !== undefined) reference = readJson(refPath);
  else {
    // how far two independent real sets of this size are apart (the floor any generator is measured against), and
    // how well the mean training clip "reconstructs" held-out clips (the floor any tokenizer should beat)
    const trainBatches: Batch[] = [];
    for await (const batch of clipBatches(dataSpec(b, 'train', seed), Math.min(64, b.samples), b.samples)) trainBatches.push(batch);
    const trainClips = firstClips(trainBatches, b.samples);
    const per = trainClips.data.length / b.samples;
    const meanClip = new Float64Array(per);
    for (let i = 0; i < b.samples; i++) for (let j = 0; j < per; j++) meanClip[j] += trainClips.data[i * per + j]! / b.samples;
    let se = 0;
    for (let i = 0; i < b.samples; i++) for (let j = 0; j < per; j++) se += ((heldClips.data[i * per + j]! - meanClip[j]!) * 127.5) ** 2;
    const { temporalPatchSize: pt, patchSize: ps } = (tokenizers.prior as LarpTokenizer).model.cfg;
    const patch: [number, number, number] = [pt, ps, ps];
    reference = {
      frechet_real_vs_real: frechetDistance(stats(clf, trainClips), heldStats), psnr_mean_clip: psnrFromMse(se / heldClips.data.length),
      psnr_clip_colour: psnrFromMse(blockMeanMse(heldClips, [b.frames, b.size, b.size])), psnr_patch_colour: psnrFromMse(blockMeanMse(heldClips, patch)),
    };
    writeFileAtomic(refPath, JSON.stringify(reference, null, 2));
  }
  const arms = {} as Record<ArmName, ArmResult>;
  const panels: Frame[] = [clipGrid(heldClips, Math.min(8, b.samples))];
  const reconPanels: Frame[] = [panels[0]!];
  for (const arm of ARMS) {
    const evalPath = join(out, `eval-${arm.name}.json`);
    const tok = tokenizers[arm.name];
    const { train, held: heldTokens } = tokens[arm.name];
    const samplesPath = join(out, `samples-${arm.name}.safetensors`);
    let generated: Int32Array;
    if (existsSync(samplesPath)) generated = loadTensors(samplesPath).tensors.get('ids')!.data as Int32Array;
    else {
      log(`[5/6] ${arm.name}: sampling ${b.samples} token sequences (temperature ${b.temperature})`);
      let bar: Progress | undefined;
      generated = await timed(`sample-${arm.name}`, () => sample(gpts[arm.name], {
        count: b.samples, length: b.tokens, bos, temperature: b.temperature, suppress: [bos], rng: new Rng(seed).fork(`samples-${arm.name}`),
        onStep: (d, total) => (bar ??= progress('sample', total, { quiet: o.quiet })).update(d),
      }));
      bar?.stop();
      saveTensors(samplesPath, new Map([['ids', E.concrete(generated, [b.samples, b.tokens], 'int32')]]));
    }
    const fakeClips = decodeAll(tok, generated, b.samples, b.tokens, clipShape);
    panels.push(clipGrid(fakeClips, Math.min(8, b.samples)));
    writePng(join(out, `samples-${arm.name}.png`), clipGrid(fakeClips, Math.min(16, b.samples)));
    const rows = Math.min(8, b.samples);
    reconPanels.push(clipGrid(decodeAll(tok, heldTokens.ids.subarray(0, rows * b.tokens), rows, b.tokens, clipShape), rows));
    if (existsSync(evalPath)) {
      arms[arm.name] = readJson(evalPath);
      log(`[5/6] ${arm.name}: evaluated`);
      continue;
    }
    log(`[5/6] ${arm.name}: reconstruction, likelihood and Fréchet distances`);
    const t0 = Date.now();
    const rec = evaluateReconstruction(tok, held);
    const reconClips = decodeAll(tok, heldTokens.ids, b.samples, b.tokens, clipShape);
    const nll = evaluateNll(gpts[arm.name], heldTokens, { bos });
    const usage = codebookUsage(train.ids, vocab);
    const result: ArmResult = {
      recon: { psnr: rec.psnr, ssim: rec.ssim, codebook_usage: rec.codebook_usage, perplexity: rec.perplexity, frechet: frechetDistance(stats(clf, reconClips), heldStats) },
      tokens: { vocab_size: vocab, codebook_usage_train: usage.usage, unigram_bits: unigramBits(train.ids, heldTokens.ids, vocab) },
      ar: { nll_nats: nll.nll, nll_bits: nll.bits, perplexity: nll.perplexity, per_position_nats: nll.perPosition },
      generation: { frechet: frechetDistance(stats(clf, fakeClips), heldStats), samples: b.samples },
      timings_s: {},
    };
    timings[`eval-${arm.name}`] = (Date.now() - t0) / 1000;
    for (const [k, v] of Object.entries(timings)) if (k.endsWith(arm.name) || k === 'classifier' || k === 'tokens') result.timings_s[k] = v;
    writeFileAtomic(evalPath, JSON.stringify(result, null, 2));
    arms[arm.name] = result;
  }

  // 6. report
  const results: StudyResults = {
    study: 'larp-prior',
    budget,
    seed,
    classifier: { accuracy: clfAccuracy, feature_dim: clf.cfg.featureDim, held_out: b.classifier.heldOut },
    reference,
    arms,
  };
  writeFileAtomic(join(out, 'results.json'), JSON.stringify(results, null, 2));
  writeFileAtomic(join(out, 'results.md'), markdownTable(results));
  writePng(join(out, 'samples.png'), sideBySide(panels));
  writePng(join(out, 'reconstructions.png'), sideBySide(reconPanels));
  log(`[6/6] wrote ${join(out, 'results.json')}, results.md, samples.png (held-out | GPT samples with prior | without) and reconstructions.png (held-out | with prior | without)`);
  return results;
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

export function markdownTable(r: StudyResults): string {
  const p = r.arms.prior, n = r.arms.noprior;
  const usage = (a: ArmResult) => `${f(100 * a.tokens.codebook_usage_train, 1)} % (${Math.round(a.tokens.codebook_usage_train * a.tokens.vocab_size)} of ${a.tokens.vocab_size})`;
  const row = (name: string, a: string, c: string) => `| ${name} | ${a} | ${c} |`;
  const lines = [
    `| ${r.budget.name} budget, seed ${r.seed} | LARP with prior | LARP without prior |`,
    '|---|---|---|',
    row(`reconstruction PSNR, held-out (dB) ↑ — the mean training clip gets ${f(r.reference.psnr_mean_clip)}, each clip's mean colour ${f(r.reference.psnr_clip_colour)}, each patch's mean colour ${f(r.reference.psnr_patch_colour)}`, f(p.recon.psnr), f(n.recon.psnr)),
    row('reconstruction SSIM ↑', f(p.recon.ssim, 3), f(n.recon.ssim, 3)),
    row('codebook usage, training tokens (codes used)', usage(p), usage(n)),
    row('unigram cross-entropy of held-out tokens (bits/token)', f(p.tokens.unigram_bits, 3), f(n.tokens.unigram_bits, 3)),
    row('**AR validation NLL (nats/token)** ↓', `**${f(p.ar.nll_nats, 3)}**`, `**${f(n.ar.nll_nats, 3)}**`),
    row('AR validation NLL (bits/token) ↓', f(p.ar.nll_bits, 3), f(n.ar.nll_bits, 3)),
    row('AR gain over unigram (bits/token) ↑', f(p.tokens.unigram_bits - p.ar.nll_bits, 3), f(n.tokens.unigram_bits - n.ar.nll_bits, 3)),
    row(`**Fréchet distance, ${p.generation.samples} generated vs held-out** ↓`, `**${f(p.generation.frechet)}**`, `**${f(n.generation.frechet)}**`),
    row('Fréchet distance, reconstructions vs held-out ↓', f(p.recon.frechet), f(n.recon.frechet)),
  ];
  const acc = Object.entries(r.classifier.accuracy).map(([k, v]) => `${k} ${f(100 * v, 1)} %`).join(', ');
  lines.push('', `Fréchet distances use vtok's own 3D-CNN classifier (penultimate layer, ${r.classifier.feature_dim}-d; held-out accuracy ${acc}); ` +
    `two independent sets of ${r.budget.samples} real clips are ${f(r.reference.frechet_real_vs_real)} apart.`);
  return `${lines.join('\n')}\n`;
}

function seedOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new VtokError(`--seed must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** `vtok study larp-prior [--out DIR] [--budget tiny|micro] [--seed N]`. */
export function registerStudy(program: Command): void {
  program
    .command('study')
    .description('run a study end to end, resumably (larp-prior: LARP with vs without its prior, judged by a GPT on its tokens; codec-rd: vtok tokens vs H.264/H.265, rate-distortion)')
    .argument('<name>', 'larp-prior | codec-rd')
    .option('--out <dir>', 'study directory (re-running resumes; default runs/study-<name>)')
    .option('--budget <name>', `${Object.keys(STUDY_BUDGETS).join(' | ')}`, 'tiny')
    .option('--seed <n>', 'seed for data, initialisation and sampling', seedOption, 0)
    .option('--quiet', 'no progress output')
    .option('--json', 'print results.json')
    .action(async (name: string, o: { out?: string; budget: string; seed: number; quiet?: boolean; json?: boolean }) => {
      if (name === 'codec-rd') {
        const r = await runCodecRdStudy({ out: o.out ?? 'runs/study-codec-rd', model: SHIPPED_NATURAL_MODEL, log: o.quiet || o.json ? undefined : (l) => process.stderr.write(`${l}\n`) });
        console.log(o.json ? JSON.stringify(r) : rdMarkdown(r));
        return;
      }
      if (name !== 'larp-prior') throw new VtokError(`unknown study "${name}" (known: larp-prior, codec-rd)`);
      const r = await runLarpPriorStudy({ out: o.out ?? 'runs/study-larp-prior', budget: o.budget, seed: o.seed, quiet: o.quiet || o.json });
      console.log(o.json ? JSON.stringify(r) : markdownTable(r));
    });
}
