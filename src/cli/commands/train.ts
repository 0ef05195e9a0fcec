import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Batch } from '../../data/dataset.js';
import { createLoader } from '../../data/loader.js';
import type { DatasetSpec } from '../../data/open.js';
import { namedDataset } from '../../data/named.js';
import * as E from '../../engine/core.js';
import { loadPerceptual } from '../../losses/perceptual.js';
import { checkpointDir } from '../../nn/checkpoint.js';
import { trainerFor } from '../../tokenizers/registry.js';
import { TrainingInterrupted, trainLoop, type LoopResult } from '../../train/loop.js';
import { tokenizerTask } from '../../train/tokenizer-task.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir } from '../../util/output-path.js';
import { int, num } from '../options.js';
import { SHIPPED_MODEL } from './demo.js';
import { trainLm } from './train-lm.js';

/**
 * `vtok train <kind> --data moving-mnist|synthetic|<folder> --preset tiny|small|base --out <run dir>`.
 * Re-running the same command resumes from the run's latest checkpoint.
 */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a tokenizer or the prefix LM (resumes when the run directory already has checkpoints)')
    .argument('<kind>', 'magvit2 | larp (tokenizers) | lm (the prefix LM, from token shards)')
    .requiredOption('--out <dir>', 'run directory (config, checkpoints, metrics, curves, samples)')
    .option('--data <name|folder>', 'moving-mnist, synthetic, or a folder of videos (class = subfolder)', 'moving-mnist')
    .option('--preset <name>', 'tiny | small | base (lm: tiny | small)', 'tiny')
    .option('--steps <n>', 'training steps (default: the preset\'s)', int('--steps', { min: 1, max: 1e8 }))
    .option('--batch <n>', 'batch size (default: the preset\'s)', int('--batch', { min: 1, max: 1024 }))
    .option('--frames <n>', 'frames of a training clip (default: the preset\'s; 1 trains a video tokenizer on images)', int('--frames', { min: 1, max: 4096 }))
    .option('--lr <x>', 'peak learning rate (default: the preset\'s)', num('--lr', { min: 0, exclusiveMin: true, max: 1 }))
    .option('--tokens <n>', 'LARP: number of holistic tokens', int('--tokens', { min: 1, max: 4096 }))
    .option('--bits <n>', 'MAGVIT-v2: LFQ bits (vocabulary 2^bits)', int('--bits', { min: 1, max: 24 }))
    .option('--no-prior', 'LARP: train without the autoregressive prior')
    .option('--gan', 'add the 3D PatchGAN discriminator (hinge + LeCam)')
    .option('--perceptual <model.onnx>', 'add an LPIPS-style perceptual loss over this ONNX feature network (frozen)')
    .option('--perceptual-weight <x>', 'weight of the perceptual loss (default 0.1)', num('--perceptual-weight', { min: 0, max: 1000 }))
    .option('--eval-every <n>', 'evaluate and write samples every n steps', int('--eval-every', { min: 1, max: 1e8 }))
    .option('--seed <n>', 'seed for initialisation and data', int('--seed', { min: 0, max: 2 ** 31 - 1 }), 0)
    .option('--shards <dir>', 'lm: token shards to train on (vtok tokenize)')
    .option('--val-shards <dir>', 'lm: token shards for the per-task validation NLL')
    .option('--tokenizer <run>', 'lm: the tokenizer the shards were made with (default: the shipped magvit2-tiny)', SHIPPED_MODEL)
    .option('--text-encoder <dir>', 'lm: a frozen ONNX text encoder folder (text-encoder.json, model, tokenizer.json) instead of the built-in one')
    .option('--mixture <task=w,…>', 'lm: task weights (default: t2v=0.4,t2i=0.1,uncond=0.1,fp=0.2,i2v=0.2 for captioned data)')
    .option('--image-steps <n>', 'lm: image-first curriculum, t2i only for the first n steps', int('--image-steps', { min: 0, max: 1e8 }))
    .option('--image-batch <n>', 'lm: rows of an image-phase batch (default: --batch times the latent frames of a clip)', int('--image-batch', { min: 1, max: 1e6 }))
    .option('--cond-dropout <p>', 'lm: probability of dropping the text (for classifier-free guidance; default 0.1)', num('--cond-dropout', { min: 0, max: 1 }))
    .option('--quiet', 'no progress bar')
    .action(async (kind: string, o: { out: string; data: string; preset: string; steps?: number; batch?: number; frames?: number; lr?: number; tokens?: number; bits?: number; prior: boolean; gan?: boolean; evalEvery?: number; seed: number; quiet?: boolean; perceptual?: string; perceptualWeight?: number; shards?: string; valShards?: string; tokenizer: string; mixture?: string; imageSteps?: number; imageBatch?: number; condDropout?: number; textEncoder?: string }, cmd: Command) => {
      const lmOnly = ['shards', 'valShards', 'tokenizer', 'mixture', 'imageSteps', 'imageBatch', 'condDropout', 'textEncoder'];
      const flag = (k: string) => `--${k === 'prior' ? 'no-prior' : k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      if (kind === 'lm') {
        for (const k of ['data', 'frames', 'tokens', 'bits', 'prior', 'gan', 'perceptual', 'perceptualWeight']) if (cmd.getOptionValueSource(k) === 'cli') throw new VtokError(`${flag(k)} applies to tokenizer training, not lm`);
        if (!o.shards) throw new VtokError('train lm needs --shards <dir> (make them with vtok tokenize)');
        const result = await trainLm({ ...o, shards: o.shards }).catch((e) => {
          if (e instanceof TrainingInterrupted) summary(o.out, e.result, e.signal);
          throw e;
        });
        summary(o.out, result, null);
        return;
      }
      for (const k of lmOnly) if (cmd.getOptionValueSource(k) === 'cli') throw new VtokError(`${flag(k)} applies to lm only, not ${kind}`);
      const trainer = trainerFor(kind);
      const preset = trainer.presets[o.preset];
      if (!preset) throw new VtokError(`unknown preset "${o.preset}" for ${kind} (known: ${Object.keys(trainer.presets).join(', ')})`);
      // Options of one model kind are refused by name for the other, rather than silently ignored.
      const only: Record<string, string> = { tokens: 'larp', prior: 'larp', bits: 'magvit2' };
      for (const [key, owner] of Object.entries(only)) {
        if (owner !== kind && cmd.getOptionValueSource(key) === 'cli') throw new VtokError(`--${key === 'prior' ? 'no-prior' : key} applies to ${owner} only, not ${kind}`);
      }
      checkOutputDir(o.out, { option: '--out' });
      const seed = o.seed;
      E.seed(seed);
      const perceptual = perceptualFor(o.out, o.perceptual, o.perceptualWeight);
      const steps = o.steps ?? preset.steps, batchSize = o.batch ?? preset.batch, lr = o.lr ?? preset.lr, frames = o.frames ?? preset.frames;
      const train = namedDataset(o.data, 'train', preset.size, frames, seed);
      const test = namedDataset(o.data, 'test', preset.size, frames, seed);
      const heldLoader = await createLoader(test, { batchSize: 8, shuffle: false, worker: false });
      let held: Batch | undefined;
      for await (const b of heldLoader) {
        held = b;
        break;
      }
      await heldLoader.close();
      if (!held) throw new VtokError('the held-out split is empty', o.data);
      const channels = held.shape[1];
      const modelConfig = trainer.modelConfig(preset, { size: preset.size, frames, channels }, { tokens: o.tokens, prior: o.prior, bits: o.bits });
      const model = trainer.build(modelConfig, steps);
      const gan = o.gan ? { weight: 0.1, loss: 'hinge' as const, lecamWeight: 0.01, ndf: 16, layers: 2, start: Math.round(steps / 5) } : undefined;
      // EMA horizon ~1/10 of the run (0.999 at most): short runs would otherwise be judged on near-initial weights
      const task = tokenizerTask(model, { lr, steps, emaDecay: Math.min(0.999, 1 - 10 / steps), gan, perceptual: perceptual?.term }, held);
      process.stderr.write(`${kind} ${o.preset}: ${model.module.parameterCount().toLocaleString()} parameters, vocabulary ${model.tokenizer.vocabSize}, ${steps} steps of ${batchSize} clips ${frames}×${preset.size}²\n`);
      const result = await trainLoop(task, {
        runDir: o.out,
        totalSteps: steps,
        config: { model: { kind, config: modelConfig }, data: { name: o.data, size: preset.size, frames, channels }, train: { preset: o.preset, steps, batch: batchSize, lr, seed, gan: !!o.gan, ...(perceptual ? { perceptual: perceptual.record } : {}) } },
        batches: (start) => batches(train, batchSize, seed, start),
        evalEvery: o.evalEvery ?? Math.max(50, Math.round(steps / 10)),
        checkpointEvery: Math.max(100, Math.round(steps / 10)),
        best: { metric: 'psnr', mode: 'max' },
        quiet: o.quiet,
      }).catch((e) => {
        // Stopped by a signal: the summary still goes out (saying where it stopped), then the CLI reports the stop.
        if (e instanceof TrainingInterrupted) summary(o.out, e.result, e.signal);
        throw e;
      });
      summary(o.out, result, null);
    });
}

/**
 * The run's summary as one JSON line: the step reached and the newest evaluation with the step it was made at
 * (`evalStep`), which after an interrupt or on a finished run's re-run is older than `step`.
 */
function summary(run: string, r: LoopResult, stopped: NodeJS.Signals | null): void {
  const ev = r.lastEval;
  console.log(JSON.stringify({ run, step: r.step, ...(stopped ? { stopped } : {}), ...(ev ? { evalStep: ev.step, ...ev.metrics } : {}) }));
}

interface PerceptualRecord { model: string; weight: number; sha256: string }

/**
 * The perceptual term of a run: from --perceptual, or, when a run with checkpoints is resumed without the flag,
 * from the run's config.json (the same file, checked by its SHA-256). Changing the feature network of a run that
 * has checkpoints is refused, so that its config always describes how it was trained.
 */
function perceptualFor(out: string, path: string | undefined, weightArg: number | undefined) {
  const configPath = join(out, 'config.json');
  const resuming = checkpointDir(out) !== null && existsSync(configPath);
  const saved: PerceptualRecord | undefined = resuming ? JSON.parse(readFileSync(configPath, 'utf8')).train?.perceptual : undefined;
  let weight = 0.1;
  if (weightArg !== undefined) weight = weightArg;
  else if (saved) weight = saved.weight;
  if (!path && !saved) {
    if (weightArg !== undefined) throw new VtokError('--perceptual-weight needs --perceptual <model.onnx>');
    return undefined;
  }
  if (resuming && path && !saved) throw new VtokError('this run was trained without --perceptual; start a new --out directory to add it', out);
  const model = path ? resolve(path) : saved!.model;
  if (!path) process.stderr.write(`resuming with the run's perceptual loss: ${model} (weight ${weight})\n`);
  const { loss, sha256 } = loadPerceptual(model);
  if (saved && saved.sha256 !== sha256) {
    throw new VtokError(`this run was trained with a different perceptual network (${saved.model}, sha256 ${saved.sha256.slice(0, 12)}…); start a new --out directory to change it`, model);
  }
  const record: PerceptualRecord = { model, weight, sha256 };
  return { record, term: { weight, distance: (video: E.Tensor, recon: E.Tensor) => loss.loss(video, recon) } };
}

async function* batches(spec: DatasetSpec, batchSize: number, seed: number, start: number): AsyncGenerator<Batch> {
  const loader = await createLoader(spec, { batchSize, seed, epochs: Infinity, dropLast: true, startBatch: start });
  try {
    yield* loader;
  } finally {
    await loader.close();
  }
}
