import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Batch } from '../data/dataset.js';
import { createLoader } from '../data/loader.js';
import type { DatasetSpec } from '../data/open.js';
import { namedDataset } from '../data/named.js';
import * as E from '../engine/core.js';
import { loadPerceptual } from '../losses/perceptual.js';
import { checkpointDir } from '../nn/checkpoint.js';
import { trainerFor, trainingPreset } from '../tokenizers/registry.js';
import { VtokError } from '../util/errors.js';
import { checkOutputDir } from '../util/output-path.js';
import { trainLoop, type LoopResult } from './loop.js';
import { tokenizerTask } from './tokenizer-task.js';

/**
 * A tokenizer training run (`vtok train <kind>`): the kind's preset with its own options, the train and held-out
 * splits of a named data set or folder, the optional discriminator and perceptual term, and the loop. Calling it
 * again on the same run directory resumes from the latest checkpoint.
 */
export interface TrainTokenizerOptions {
  /** A trainable tokenizer kind (src/tokenizers/registry.ts). */
  kind: string;
  /** The run directory: config, checkpoints, metrics, curves, samples. */
  out: string;
  /** moving-mnist, synthetic, or a folder of videos (class = subfolder). */
  data: string;
  preset: string;
  /** The kind's own options by key (`{ tokens: 64 }`, `{ prior: false }`); another kind's option is refused. */
  kindOptions?: Record<string, unknown>;
  /** Defaults: the preset's. */
  steps?: number;
  batch?: number;
  /** Frames of a training clip (1 trains a video tokenizer on images). */
  frames?: number;
  lr?: number;
  /** Adds the 3D PatchGAN discriminator (hinge + LeCam). */
  gan?: boolean;
  /** An ONNX feature network for an LPIPS-style perceptual loss (frozen); a resumed run keeps its own. */
  perceptual?: string;
  /** Its weight (default 0.1, or the resumed run's). */
  perceptualWeight?: number;
  evalEvery?: number;
  seed: number;
  quiet?: boolean;
  /** Stop after this many steps in this process (tests of resume). */
  stopAfter?: number;
}

/** Trains (or resumes) a tokenizer; a stop by signal throws TrainingInterrupted after its checkpoint. */
export async function trainTokenizer(o: TrainTokenizerOptions): Promise<LoopResult> {
  const { kind, seed } = o;
  const preset = trainingPreset(kind, o.preset, o.kindOptions);
  const trainer = trainerFor(kind);
  checkOutputDir(o.out, { option: '--out' });
  E.seed(seed);
  const perceptual = perceptualFor(o.out, o.perceptual, o.perceptualWeight);
  const steps = o.steps ?? preset.steps,
    batchSize = o.batch ?? preset.batch,
    lr = o.lr ?? preset.lr,
    frames = o.frames ?? preset.frames;
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
  const modelConfig = trainer.modelConfig(preset, { size: preset.size, frames, channels });
  const model = trainer.build(modelConfig, steps);
  const gan = o.gan
    ? { weight: 0.1, loss: 'hinge' as const, lecamWeight: 0.01, ndf: 16, layers: 2, start: Math.round(steps / 5) }
    : undefined;
  // EMA horizon ~1/10 of the run (0.999 at most): short runs would otherwise be judged on near-initial weights
  const task = tokenizerTask(
    model,
    { lr, steps, emaDecay: Math.min(0.999, 1 - 10 / steps), gan, perceptual: perceptual?.term },
    held,
  );
  process.stderr.write(
    `${kind} ${o.preset}: ${model.module.parameterCount().toLocaleString()} parameters, vocabulary ` +
      `${model.tokenizer.vocabSize}, ${steps} steps of ${batchSize} clips ${frames}×${preset.size}²\n`,
  );
  return trainLoop(task, {
    runDir: o.out,
    totalSteps: steps,
    config: {
      model: { kind, config: modelConfig },
      data: { name: o.data, size: preset.size, frames, channels },
      train: {
        preset: o.preset,
        steps,
        batch: batchSize,
        lr,
        seed,
        gan: !!o.gan,
        ...(perceptual ? { perceptual: perceptual.record } : {}),
      },
    },
    batches: (start) => batches(train, batchSize, seed, start),
    evalEvery: o.evalEvery ?? Math.max(50, Math.round(steps / 10)),
    checkpointEvery: Math.max(100, Math.round(steps / 10)),
    best: { metric: 'psnr', mode: 'max' },
    quiet: o.quiet,
    stopAfter: o.stopAfter,
  });
}

interface PerceptualRecord {
  model: string;
  weight: number;
  sha256: string;
}

/**
 * The perceptual term of a run: from --perceptual, or, when a run with checkpoints is resumed without the flag,
 * from the run's config.json (the same file, checked by its SHA-256). Changing the feature network of a run that
 * has checkpoints is refused, so that its config always describes how it was trained.
 */
function perceptualFor(out: string, path: string | undefined, weightArg: number | undefined) {
  const configPath = join(out, 'config.json');
  const resuming = checkpointDir(out) !== null && existsSync(configPath);
  const saved: PerceptualRecord | undefined = resuming
    ? JSON.parse(readFileSync(configPath, 'utf8')).train?.perceptual
    : undefined;
  let weight = 0.1;
  if (weightArg !== undefined) weight = weightArg;
  else if (saved) weight = saved.weight;
  if (!path && !saved) {
    if (weightArg !== undefined) throw new VtokError('--perceptual-weight needs --perceptual <model.onnx>');
    return undefined;
  }
  if (resuming && path && !saved)
    throw new VtokError('this run was trained without --perceptual; start a new --out directory to add it', out);
  const model = path ? resolve(path) : saved!.model;
  if (!path) process.stderr.write(`resuming with the run's perceptual loss: ${model} (weight ${weight})\n`);
  const { loss, sha256 } = loadPerceptual(model);
  if (saved && saved.sha256 !== sha256) {
    throw new VtokError(
      `this run was trained with a different perceptual network (${saved.model}, ` +
        `sha256 ${saved.sha256.slice(0, 12)}…); start a new --out directory to change it`,
      model,
    );
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
