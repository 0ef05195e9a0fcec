import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  classifierFeatures,
  loadVideoClassifier,
  trainVideoClassifier,
  type VideoClassifier,
} from '../../classifier/video-classifier.js';
import type { Batch } from '../../data/dataset.js';
import { createLoader } from '../../data/loader.js';
import * as E from '../../engine/core.js';
import { evaluateNll, Gpt, type GptConfig, sample, tokenSequences, type TokenSequences } from './gpt.js';
import type { ClipTensor, Frame } from '../../io/frame.js';
import { writePng } from '../../io/video.js';
import { FeatureStats, frechetDistance, type GaussianStats } from '../../metrics/frechet.js';
import { psnrFromMse } from '../../metrics/psnr.js';
import { codebookUsage } from '../../metrics/tokens.js';
import { loadTensors, saveTensors } from '../../nn/weights-file.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { larpTrainer } from '../../tokenizers/larp/kind.js';
import type { LarpTokenizer } from '../../tokenizers/larp/tokenizer.js';
import { evaluateReconstruction } from '../../tokenizers/reconstruction.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
import { gptTask, lmBatches } from './train-gpt.js';
import { trainLoop } from '../../train/loop.js';
import { tokenizerTask } from '../../train/tokenizer-task.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError } from '../../util/errors.js';
import { type Progress, progress } from '../../util/progress.js';
import { Rng } from '../../util/rng.js';
import { ARMS, type ArmName, checkBudget, resolveBudget, type StudyBudget } from './budget.js';
import { blockMeanMse, clipBatches, dataSpec, firstClips, heldOutClips, unigramBits } from './data.js';
import { clipGrid, sideBySide } from './images.js';
import { type ArmResult, markdownTable, type StudyResults } from './report.js';

export { STUDY_BUDGETS, type StudyBudget } from './budget.js';
export { blockMeanMse } from './data.js';
export { type ArmResult, markdownTable, type StudyResults } from './report.js';

/**
 * The LARP paper's claim at small scale — that training the tokenizer with a learned autoregressive prior makes its
 * tokens easier for a second-stage AR model, at little cost in reconstruction. One function per stage:
 *
 *   1. classifier   vtok's own 3D-CNN video classifier on labelled synthetic clips (features for Fréchet distances)
 *   2. tokenizers   LARP with and without the prior: same steps, batch, seed, data and initial weights
 *   3. tokens       both tokenizers encode the same training and held-out clips
 *   4. gpts         the same small GPT trained on each token set with the same budget
 *   5. evaluation   per arm: reconstruction PSNR/SSIM on held-out clips, the GPT's held-out NLL per token, and the
 *                   Fréchet distance between clips decoded from GPT samples and held-out clips
 *   6. report       results.json, results.md, sample grids (PNG)
 *
 * Every stage leaves its outputs in the study directory and is skipped when they exist (training stages resume
 * from their checkpoints), so re-running the same command continues an interrupted study.
 */
export interface StudyOptions {
  out: string;
  budget: string | StudyBudget;
  seed?: number;
  quiet?: boolean;
  /** Stage messages (default: stderr unless quiet). */
  log?: (line: string) => void;
}

/** What every stage sees: the study directory, budget, seed, logging and the timings gathered so far. */
interface Study {
  out: string;
  b: StudyBudget & { name: string };
  seed: number;
  quiet?: boolean;
  log(line: string): void;
  timings: Record<string, number>;
  timed<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
  clipShape: number[];
}

type Tokens = Record<ArmName, { train: TokenSequences; held: TokenSequences }>;

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** The step of a run's latest checkpoint (0 when it has none). */
function finishedSteps(runDir: string): number {
  const p = join(runDir, 'checkpoints', 'latest.json');
  return existsSync(p) ? Number(readJson(p).step ?? 0) : 0;
}

function stats(clf: VideoClassifier, clips: ClipTensor): GaussianStats {
  return new FeatureStats(clf.cfg.featureDim).add(classifierFeatures(clf, clips)).stats();
}

export async function runLarpPriorStudy(o: StudyOptions): Promise<StudyResults> {
  const s = openStudy(o);
  const clf = await trainClassifier(s);
  const held = await heldOutClips(s.b, s.seed);
  await trainTokenizers(s, held);
  // both arms are judged at their final step (EMA weights), not at a best checkpoint
  const tokenizers = Object.fromEntries(
    ARMS.map((a) => [a.name, loadTokenizer(join(s.out, `larp-${a.name}`), { which: 'latest' }).tokenizer]),
  ) as Record<ArmName, Tokenizer>;
  const tokens = await encodeTokens(s, tokenizers, held);
  const gpts = await trainGpts(s, tokens, tokenizers.prior.vocabSize);
  const heldClips = firstClips(held, s.b.samples);
  const reference = await referenceScores(s, clf.classifier, heldClips, tokenizers.prior as LarpTokenizer);
  const { arms, panels, reconPanels } = await evaluateArms(s, {
    clf: clf.classifier,
    tokenizers,
    tokens,
    gpts,
    held,
    heldClips,
  });
  const results: StudyResults = {
    study: 'larp-prior',
    budget: s.b,
    seed: s.seed,
    classifier: {
      accuracy: clf.accuracy,
      feature_dim: clf.classifier.cfg.featureDim,
      held_out: s.b.classifier.heldOut,
    },
    reference,
    arms,
  };
  writeReport(s, results, panels, reconPanels);
  return results;
}

/** The study directory, checked to belong to this budget and seed (a new one records them). */
function openStudy(o: StudyOptions): Study {
  const b = resolveBudget(o.budget);
  checkBudget(b);
  const seed = o.seed ?? 0;
  const studyPath = join(o.out, 'study.json');
  const identity = { study: 'larp-prior', budget: b, seed };
  if (existsSync(studyPath)) {
    if (JSON.stringify(readJson(studyPath)) !== JSON.stringify(identity))
      throw new VtokError(
        'this study directory was started with another budget or seed; use a new --out directory',
        o.out,
      );
  } else {
    writeFileAtomic(studyPath, JSON.stringify(identity, null, 2));
  }
  const timings: Record<string, number> = {};
  return {
    out: o.out,
    b,
    seed,
    quiet: o.quiet,
    timings,
    clipShape: [3, b.frames, b.size, b.size],
    log:
      o.log ??
      ((line: string) => {
        if (!o.quiet) process.stderr.write(`${line}\n`);
      }),
    async timed(name, fn) {
      const t0 = Date.now();
      const r = await fn();
      timings[name] = (timings[name] ?? 0) + (Date.now() - t0) / 1000;
      return r;
    },
  };
}

/** 1. The classifier whose features give the Fréchet distances. */
async function trainClassifier(s: Study): Promise<{ classifier: VideoClassifier; accuracy: Record<string, number> }> {
  const { b, seed } = s;
  const dir = join(s.out, 'classifier');
  const path = join(dir, 'classifier.safetensors');
  if (existsSync(path)) {
    const l = loadVideoClassifier(path);
    const accuracy = JSON.parse(l.metadata.accuracy ?? '{}');
    s.log(`[1/6] classifier: done (held-out accuracy ${JSON.stringify(accuracy)})`);
    return { classifier: l.classifier, accuracy };
  }
  s.log(
    `[1/6] classifier: ${b.classifier.steps} steps of ${b.classifier.batch} synthetic clips (motion + shape labels)`,
  );
  E.seed(seed + 2);
  const r = await s.timed('classifier', () =>
    trainVideoClassifier({
      runDir: dir,
      steps: b.classifier.steps,
      batchSize: b.classifier.batch,
      seed: seed + 2,
      frames: b.frames,
      size: b.size,
      width: b.classifier.width,
      featureDim: b.classifier.featureDim,
      heldOut: b.classifier.heldOut,
      quiet: s.quiet,
    }),
  );
  s.log(`      held-out accuracy ${JSON.stringify(r.accuracy)}`);
  return { classifier: r.classifier, accuracy: r.accuracy };
}

/** 2. LARP with and without the prior: same seed (identical tokenizer initialisation), data order and steps. */
async function trainTokenizers(s: Study, held: Batch[]): Promise<void> {
  const { b, seed } = s;
  const trainer = larpTrainer;
  const preset = trainer.presets[b.larp.preset];
  if (!preset)
    throw new VtokError(`unknown LARP preset "${b.larp.preset}" (known: ${Object.keys(trainer.presets).join(', ')})`);
  for (const arm of ARMS) {
    const dir = join(s.out, `larp-${arm.name}`);
    const done = finishedSteps(dir);
    if (done >= b.larp.steps) {
      s.log(`[2/6] larp-${arm.name}: done (${done} steps)`);
      continue;
    }
    s.log(
      `[2/6] larp-${arm.name}: ${b.larp.steps} steps of ${b.larp.batch} clips${done ? ` (resuming at ${done})` : ''}`,
    );
    E.seed(seed);
    const modelConfig = trainer.modelConfig(
      { ...preset, model: { ...preset.model, tokens: b.tokens, prior: arm.prior } },
      { size: b.size, frames: b.frames, channels: 3 },
    );
    const model = trainer.build(modelConfig, b.larp.steps);
    // the same noise stream from step 0 in both arms (the prior's own initialisation drew extra numbers)
    E.seed(seed + 1);
    const first = firstClips(held, Math.min(8, b.heldClips));
    const heldBatch: Batch = { ...first, indices: Int32Array.from({ length: first.shape[0] }, (_, i) => i), epoch: 0 };
    const task = tokenizerTask(
      model,
      { lr: preset.lr, steps: b.larp.steps, emaDecay: Math.min(0.999, 1 - 10 / b.larp.steps) },
      heldBatch,
    );
    const trainSpec = dataSpec(b, 'train', seed);
    await s.timed(`larp-${arm.name}`, () =>
      trainLoop(task, {
        runDir: dir,
        totalSteps: b.larp.steps,
        config: {
          model: { kind: 'larp', config: modelConfig },
          data: {
            name: 'synthetic',
            labelBy: 'motion',
            size: b.size,
            frames: b.frames,
            channels: 3,
            clips: b.trainClips,
          },
          train: {
            preset: b.larp.preset,
            steps: b.larp.steps,
            batch: b.larp.batch,
            lr: preset.lr,
            seed,
            gan: false,
            study: 'larp-prior',
          },
        },
        batches: (start) =>
          (async function* () {
            const loader = await createLoader(trainSpec, {
              batchSize: b.larp.batch,
              seed,
              epochs: Infinity,
              dropLast: true,
              startBatch: start,
            });
            try {
              yield* loader;
            } finally {
              await loader.close();
            }
          })(),
        evalEvery: b.larp.evalEvery,
        checkpointEvery: Math.max(100, Math.round(b.larp.steps / 10)),
        best: { metric: 'psnr', mode: 'max' },
        quiet: s.quiet,
      }),
    );
  }
}

/** 3. Tokens of the training and held-out clips under each tokenizer (one pass over the data for both). */
async function encodeTokens(s: Study, tokenizers: Record<ArmName, Tokenizer>, held: Batch[]): Promise<Tokens> {
  const { b, seed } = s;
  const tokenPath = (arm: ArmName) => join(s.out, `tokens-${arm}.safetensors`);
  if (ARMS.every((a) => existsSync(tokenPath(a.name)))) {
    s.log('[3/6] tokens: done');
  } else {
    s.log(`[3/6] tokens: encoding ${b.trainClips} training and ${b.heldClips} held-out clips with both tokenizers`);
    await s.timed('tokens', async () => {
      const B = Math.min(64, b.trainClips);
      const train: Record<string, Int32Array[]> = { prior: [], noprior: [] };
      const bar = progress('encode', Math.ceil(b.trainClips / B), { quiet: s.quiet });
      let k = 0;
      for await (const batch of clipBatches(dataSpec(b, 'train', seed), B)) {
        for (const a of ARMS) train[a.name]!.push(encodeClips(tokenizers[a.name], batch, B).ids);
        bar.update(++k);
      }
      bar.stop();
      for (const a of ARMS) {
        const heldIds = held.map((batch) => encodeClips(tokenizers[a.name], batch, Math.min(64, b.heldClips)).ids);
        const tr = concat(train[a.name]!),
          he = concat(heldIds);
        saveTensors(
          tokenPath(a.name),
          new Map([
            ['train', E.concrete(tr, [tr.length / b.tokens, b.tokens], 'int32')],
            ['held', E.concrete(he, [he.length / b.tokens, b.tokens], 'int32')],
          ]),
          { tokenizer: `larp-${a.name}`, vocab_size: String(tokenizers.prior.vocabSize) },
        );
      }
    });
  }
  return Object.fromEntries(
    ARMS.map((a) => {
      const { tensors } = loadTensors(tokenPath(a.name));
      const seqs = (name: string): TokenSequences => {
        const t = tensors.get(name);
        if (t?.rank !== 2 || t.shape[1] !== b.tokens)
          throw new VtokError(`no "${name}" token tensor [N, ${b.tokens}]`, tokenPath(a.name));
        return tokenSequences(t.data as Int32Array, t.shape[0]!, t.shape[1]!);
      };
      return [a.name, { train: seqs('train'), held: seqs('held') }];
    }),
  ) as Tokens;
}

function concat(parts: Int32Array[]): Int32Array {
  const all = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return all;
}

/** 4. The same GPT on each token set: ids 0…K−1 are tokens, K is BOS. */
async function trainGpts(s: Study, tokens: Tokens, vocab: number): Promise<Record<ArmName, Gpt>> {
  const { b, seed } = s;
  const bos = vocab;
  const g = b.gpt;
  const gptConfig: GptConfig = {
    vocabSize: vocab + 1,
    maxLength: b.tokens,
    layers: g.layers,
    heads: g.heads,
    dim: g.dim,
    dropout: g.dropout,
  };
  const gpts = {} as Record<ArmName, Gpt>;
  for (const arm of ARMS) {
    const dir = join(s.out, `gpt-${arm.name}`);
    const done = finishedSteps(dir);
    s.log(
      `[4/6] gpt-${arm.name}: ` +
        (done >= b.gpt.steps
          ? `done (${done} steps)`
          : `${b.gpt.steps} steps of ${b.gpt.batch} sequences${done ? ` (resuming at ${done})` : ''}`),
    );
    E.seed(seed + 10);
    const model = new Gpt(gptConfig);
    const opts = { steps: b.gpt.steps, batchSize: b.gpt.batch, lr: b.gpt.lr, seed, bos };
    const train = () =>
      trainLoop(gptTask(model, tokens[arm.name].train, tokens[arm.name].held, opts), {
        runDir: dir,
        totalSteps: b.gpt.steps,
        config: {
          model: { kind: 'gpt', config: gptConfig },
          data: { tokens: `larp-${arm.name}`, train: tokens[arm.name].train.count, bos },
          train: { steps: b.gpt.steps, batch: b.gpt.batch, lr: b.gpt.lr, seed },
        },
        batches: (start) => lmBatches(tokens[arm.name].train, b.gpt.batch, bos, seed, start),
        evalEvery: b.gpt.evalEvery,
        checkpointEvery: Math.max(100, Math.round(b.gpt.steps / 5)),
        quiet: s.quiet,
      });
    // a finished run only loads its weights; only real training is timed
    await (done >= b.gpt.steps ? train() : s.timed(`gpt-${arm.name}`, train));
    model.eval();
    gpts[arm.name] = model;
  }
  return gpts;
}

/**
 * 5a. The floors the arms are measured against: how far two independent real sets of this size are apart, how
 * well the mean training clip "reconstructs" held-out clips, and what keeping only each clip's (or patch's) mean
 * colour scores.
 */
async function referenceScores(
  s: Study,
  clf: VideoClassifier,
  heldClips: ClipTensor,
  larp: LarpTokenizer,
): Promise<StudyResults['reference']> {
  const { b, seed } = s;
  const path = join(s.out, 'reference.json');
  if (existsSync(path) && readJson(path).psnr_patch_colour !== undefined) return readJson(path);
  const trainBatches: Batch[] = [];
  for await (const batch of clipBatches(dataSpec(b, 'train', seed), Math.min(64, b.samples), b.samples))
    trainBatches.push(batch);
  const trainClips = firstClips(trainBatches, b.samples);
  const per = trainClips.data.length / b.samples;
  const meanClip = new Float64Array(per);
  for (let i = 0; i < b.samples; i++)
    for (let j = 0; j < per; j++) meanClip[j]! += trainClips.data[i * per + j]! / b.samples;
  let se = 0;
  for (let i = 0; i < b.samples; i++)
    for (let j = 0; j < per; j++) se += ((heldClips.data[i * per + j]! - meanClip[j]!) * 127.5) ** 2;
  const { temporalPatchSize: pt, patchSize: ps } = larp.model.cfg;
  const reference = {
    frechet_real_vs_real: frechetDistance(stats(clf, trainClips), stats(clf, heldClips)),
    psnr_mean_clip: psnrFromMse(se / heldClips.data.length),
    psnr_clip_colour: psnrFromMse(blockMeanMse(heldClips, [b.frames, b.size, b.size])),
    psnr_patch_colour: psnrFromMse(blockMeanMse(heldClips, [pt, ps, ps])),
  };
  writeFileAtomic(path, JSON.stringify(reference, null, 2));
  return reference;
}

/** 5b. Per arm: GPT samples decoded to clips, reconstruction, likelihood and Fréchet distances. */
async function evaluateArms(
  s: Study,
  c: {
    clf: VideoClassifier;
    tokenizers: Record<ArmName, Tokenizer>;
    tokens: Tokens;
    gpts: Record<ArmName, Gpt>;
    held: Batch[];
    heldClips: ClipTensor;
  },
): Promise<{ arms: Record<ArmName, ArmResult>; panels: Frame[]; reconPanels: Frame[] }> {
  const { b, seed } = s;
  const vocab = c.tokenizers.prior.vocabSize,
    bos = vocab;
  const heldStats = stats(c.clf, c.heldClips);
  const decode = (tok: Tokenizer, ids: Int32Array, n: number) =>
    decodeTokens(tok, { ids, n, grid: [b.tokens] }, Math.min(64, n));
  const arms = {} as Record<ArmName, ArmResult>;
  const panels: Frame[] = [clipGrid(c.heldClips, Math.min(8, b.samples))];
  const reconPanels: Frame[] = [panels[0]!];
  for (const arm of ARMS) {
    const evalPath = join(s.out, `eval-${arm.name}.json`);
    const tok = c.tokenizers[arm.name];
    const { train, held: heldTokens } = c.tokens[arm.name];
    const samplesPath = join(s.out, `samples-${arm.name}.safetensors`);
    let generated: Int32Array;
    if (existsSync(samplesPath)) generated = loadTensors(samplesPath).tensors.get('ids')!.data as Int32Array;
    else {
      s.log(`[5/6] ${arm.name}: sampling ${b.samples} token sequences (temperature ${b.temperature})`);
      let bar: Progress | undefined;
      generated = await s.timed(`sample-${arm.name}`, () =>
        sample(c.gpts[arm.name], {
          count: b.samples,
          length: b.tokens,
          bos,
          temperature: b.temperature,
          suppress: [bos],
          rng: new Rng(seed).fork(`samples-${arm.name}`),
          onStep: (d, total) => {
            bar ??= progress('sample', total, { quiet: s.quiet });
            bar.update(d);
          },
        }),
      );
      bar?.stop();
      saveTensors(samplesPath, new Map([['ids', E.concrete(generated, [b.samples, b.tokens], 'int32')]]));
    }
    const fakeClips = decode(tok, generated, b.samples);
    panels.push(clipGrid(fakeClips, Math.min(8, b.samples)));
    writePng(join(s.out, `samples-${arm.name}.png`), clipGrid(fakeClips, Math.min(16, b.samples)));
    const rows = Math.min(8, b.samples);
    reconPanels.push(clipGrid(decode(tok, heldTokens.ids.subarray(0, rows * b.tokens), rows), rows));
    if (existsSync(evalPath)) {
      arms[arm.name] = readJson(evalPath);
      s.log(`[5/6] ${arm.name}: evaluated`);
      continue;
    }
    s.log(`[5/6] ${arm.name}: reconstruction, likelihood and Fréchet distances`);
    const t0 = Date.now();
    const rec = evaluateReconstruction(tok, c.held);
    const reconClips = decode(tok, heldTokens.ids.subarray(0, b.samples * b.tokens), b.samples);
    const nll = evaluateNll(c.gpts[arm.name], heldTokens, { bos });
    const usage = codebookUsage(train.ids, vocab);
    const result: ArmResult = {
      recon: {
        psnr: rec.psnr,
        ssim: rec.ssim,
        codebook_usage: rec.codebook_usage,
        perplexity: rec.perplexity,
        frechet: frechetDistance(stats(c.clf, reconClips), heldStats),
      },
      tokens: {
        vocab_size: vocab,
        codebook_usage_train: usage.usage,
        unigram_bits: unigramBits(train.ids, heldTokens.ids, vocab),
      },
      ar: { nll_nats: nll.nll, nll_bits: nll.bits, perplexity: nll.perplexity, per_position_nats: nll.perPosition },
      generation: { frechet: frechetDistance(stats(c.clf, fakeClips), heldStats), samples: b.samples },
      timings_s: {},
    };
    s.timings[`eval-${arm.name}`] = (Date.now() - t0) / 1000;
    for (const [k, v] of Object.entries(s.timings))
      if (k.endsWith(arm.name) || k === 'classifier' || k === 'tokens') result.timings_s[k] = v;
    writeFileAtomic(evalPath, JSON.stringify(result, null, 2));
    arms[arm.name] = result;
  }
  return { arms, panels, reconPanels };
}

/** 6. results.json, results.md and the sample and reconstruction grids. */
function writeReport(s: Study, results: StudyResults, panels: Frame[], reconPanels: Frame[]): void {
  writeFileAtomic(join(s.out, 'results.json'), JSON.stringify(results, null, 2));
  writeFileAtomic(join(s.out, 'results.md'), markdownTable(results));
  writePng(join(s.out, 'samples.png'), sideBySide(panels));
  writePng(join(s.out, 'reconstructions.png'), sideBySide(reconPanels));
  s.log(
    `[6/6] wrote ${join(s.out, 'results.json')}, results.md, samples.png (held-out | GPT ` +
      'samples with prior | without) and reconstructions.png (held-out | with prior | without)',
  );
}
