import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as E from '../engine/core.js';
import { LM_KIND, type Generator, type LmDirConfig } from '../generation/model-dir.js';
import type { PrefixLmConfig } from '../generation/prefix-lm/model.js';
import {
  checkTextEncoder,
  isOnnxText,
  TextPrefixLm,
  type OnnxTextRef,
  type TextPrefixLmConfig,
} from '../generation/prefix-lm/text-lm.js';
import { OnnxTextEncoder } from '../generation/text/onnx.js';
import { ShardReader } from '../corpus/shards.js';
import { getTask, legacyTextSlots, trainingCondFrames } from '../generation/tasks.js';
import type { BuiltinTextEncoderConfig } from '../generation/text/builtin.js';
import { tokenizerIdentity } from '../tokenizers/identity.js';
import { checkTokenizer, layoutFromJson, trainedCondFrames, type VocabLayout } from '../generation/vocab.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { trainLoop, type LoopResult } from './loop.js';
import {
  defaultMixture,
  imageBatchSize,
  layoutForShards,
  LmBatcher,
  lmBatches,
  prefixLmTask,
  sampleRequests,
} from './prefix-lm.js';
import { VtokError, check } from '../util/errors.js';
import { checkOutputDir } from '../util/output-path.js';

/** LM presets: the transformer, the built-in text encoder and the training defaults. */
export interface LmPreset {
  lm: Pick<PrefixLmConfig, 'dim' | 'layers' | 'heads' | 'hidden'>;
  text: Omit<BuiltinTextEncoderConfig, 'maxTokens'>;
  batch: number;
  steps: number;
  lr: number;
}

export const LM_PRESETS: Record<string, LmPreset> = {
  tiny: {
    lm: { dim: 32, layers: 2, heads: 2, hidden: 64 },
    text: { dim: 32, layers: 1, heads: 2 },
    batch: 4,
    steps: 200,
    lr: 3e-3,
  },
  small: {
    lm: { dim: 128, layers: 4, heads: 4, hidden: 352 },
    text: { dim: 128, layers: 2, heads: 4 },
    batch: 4,
    steps: 2800,
    lr: 2e-3,
  },
};

/** Longest prompt in UTF-8 bytes (captioned Moving MNIST's longest caption is 67). */
export const PROMPT_BYTES = 80;

export interface TrainLmOptions {
  shards: string;
  valShards?: string;
  tokenizer: string;
  preset: string;
  steps?: number;
  batch?: number;
  lr?: number;
  seed: number;
  out: string;
  evalEvery?: number;
  imageSteps?: number;
  imageBatch?: number;
  condDropout?: number;
  /** Latent frames a frame-prediction row conditions on (default: `trainingCondFrames`, 1 up to a second). */
  fpCondFrames?: number[];
  mixture?: string;
  /** A frozen ONNX text encoder folder instead of the built-in encoder. */
  textEncoder?: string;
  quiet?: boolean;
  /** Stop after this many steps in this process (tests of resume). */
  stopAfter?: number;
}

/**
 * `--mixture t2v=0.4,fp=0.2,…` (or `class:1`) → weights (tasks checked against the registry, each named once, finite
 * weights).
 */
export function parseMixture(s: string): Record<string, number> {
  const out: Record<string, number> = {};
  const parts = s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new VtokError('--mixture is empty: give task=weight pairs, e.g. t2v=0.8,fp=0.2');
  for (const part of parts) {
    const m = /^([a-z0-9_]+)[=:]([0-9.eE+-]+)$/.exec(part);
    if (!m || !(Number(m[2]) >= 0))
      throw new VtokError(`--mixture: expected task=weight pairs, got ${JSON.stringify(part)}`);
    const task = m[1]!,
      weight = m[2]!;
    getTask(task);
    if (task in out) throw new VtokError(`--mixture names task ${task} twice`);
    check(Number.isFinite(Number(weight)), `--mixture: the weight of ${task} must be a finite number, got ${weight}`);
    out[task] = Number(weight);
  }
  check(
    Object.values(out).some((w) => w > 0),
    '--mixture: no task has a positive weight',
  );
  return out;
}

/** The layout and text encoder of a run being resumed (undefined for a new one, or one whose config is unreadable). */
function savedRun(out: string): { layout: VocabLayout; text: TextPrefixLmConfig['text'] } | undefined {
  const path = join(out, 'config.json');
  if (!existsSync(path)) return undefined;
  try {
    const c = JSON.parse(readFileSync(path, 'utf8'));
    return { layout: layoutFromJson(c.layout, path), text: c.model?.config?.text ?? null };
  } catch {
    return undefined;
  }
}

/** The default latent frames of frame prediction for a corpus's clips at `fps` (tasks.ts `trainingCondFrames`). */
function defaultCondFrames(reader: ShardReader, fps: number): number[] {
  const grid = reader.index.clips[0]?.grid ?? [1];
  if (grid.length !== 3) return [1]; // holistic tokens (LARP) have no frames to predict
  const t = grid[0]!;
  const stride = t > 1 ? (reader.index.clipFrames - 1) / (t - 1) : 1;
  return trainingCondFrames(t, stride, fps);
}

/**
 * Trains (or resumes) the text-conditioned prefix LM on token shards (`vtok train lm`): the preset, the task mixture,
 * the frozen tokenizer the shards were made with (checked against them) and the loop. A stop by signal throws
 * TrainingInterrupted after its checkpoint.
 */
export async function trainLm(o: TrainLmOptions): Promise<LoopResult> {
  const preset = LM_PRESETS[o.preset];
  if (!preset)
    throw new VtokError(`unknown preset "${o.preset}" for lm (known: ${Object.keys(LM_PRESETS).join(', ')})`);
  const given = o.mixture !== undefined ? parseMixture(o.mixture) : undefined;
  checkOutputDir(o.out, { option: '--out' });
  const train = new ShardReader(o.shards);
  const val = o.valShards ? new ShardReader(o.valShards) : undefined;
  const tokDir = resolve(o.tokenizer);
  const { tokenizer, module } = loadTokenizer(tokDir);
  const identity = tokenizerIdentity(tokenizer, module.stateDict());
  const mixture = given ?? defaultMixture(train);
  const steps = o.steps ?? preset.steps,
    batchSize = o.batch ?? preset.batch,
    lr = o.lr ?? preset.lr;
  E.seed(o.seed);
  const frozen = o.textEncoder ? OnnxTextEncoder.load(resolve(o.textEncoder)) : undefined;
  // a resumed run keeps the sequences it was started with (a run of an older version: those it knew), and its
  // frozen text encoder's files (one that recorded no digest goes on without)
  const resumed = savedRun(o.out);
  const savedText = resumed && isOnnxText(resumed.text) ? resumed.text : undefined;
  if (frozen && savedText) checkTextEncoder(savedText, frozen, o.textEncoder);
  const sha256 = savedText && savedText.sha256 === undefined ? {} : { sha256: frozen?.sha256 };
  const text: BuiltinTextEncoderConfig | OnnxTextRef = frozen
    ? { kind: 'onnx', dir: resolve(o.textEncoder!), dim: frozen.dim, maxTokens: frozen.maxTokens, ...sha256 }
    : { ...preset.text, maxTokens: PROMPT_BYTES };
  const fps = 8;
  const saved = resumed?.layout;
  const condFrames = o.fpCondFrames ?? (saved ? trainedCondFrames(saved) : defaultCondFrames(train, fps));
  const tasks = Object.keys(mixture);
  let layout = layoutForShards(train, tasks, { textLength: text.maxTokens, condFrames });
  if (saved) layout = { ...layout, text: saved.text ?? legacyTextSlots(layout, text.maxTokens) };
  if (mixture.fp) {
    const t = layout.outputs[0]!.grid[0]!;
    check(
      condFrames.every((k) => k < t),
      `frame prediction conditions on [${condFrames}] latent frames; the clips have ${t}, so at most ${t - 1}`,
    );
  }
  checkTokenizer(layout, identity, tokDir);
  if (val) checkTokenizer(layout, val.index.tokenizer, o.valShards);
  // maxLength: the longest sequence any task of the mixture makes
  const probe = new TextPrefixLm(
    {
      lm: { ...preset.lm, vocabSize: layout.size, maxLength: 1 << 20, textDim: text.dim },
      text: isOnnxText(text) ? text : { ...text, layers: 0 },
    },
    { frozen },
  );
  const probeBatcher = new LmBatcher(probe, layout);
  const maxLength = Math.max(...Object.keys(mixture).map((t) => probeBatcher.length(t)));
  const config: TextPrefixLmConfig = {
    lm: { ...preset.lm, vocabSize: layout.size, maxLength, textDim: text.dim },
    text,
  };
  const model = new TextPrefixLm(config, { frozen });
  const batcher = new LmBatcher(model, layout, o.condDropout ?? 0.1);
  const runConfig: LmDirConfig = {
    model: { kind: LM_KIND, config },
    layout,
    tokenizer: tokDir,
    fps,
    data: { shards: resolve(o.shards), val: o.valShards ? resolve(o.valShards) : null },
    // what chose the best checkpoint (the validation corpus), kept by `vtok pack` where the paths above are not
    validation: val ? val.index.corpus : null,
    train: {
      preset: o.preset,
      steps,
      batch: batchSize,
      lr,
      seed: o.seed,
      mixture,
      imageSteps: o.imageSteps ?? 0,
      imageBatch: o.imageSteps ? imageBatchSize(train, { batchSize, imageBatch: o.imageBatch }) : 0,
      condDropout: o.condDropout ?? 0.1,
      fpCondFrames: condFrames,
    },
  };
  const generator: Generator = { dir: o.out, model, layout, tokenizer, tokenizerDir: tokDir, fps, config: runConfig };
  const requests = sampleRequests((val ?? train).index.clips, mixture);
  const taskOptions = {
    steps,
    batchSize,
    lr,
    seed: o.seed,
    mixture,
    imageSteps: o.imageSteps,
    imageBatch: o.imageBatch,
    condDropout: o.condDropout,
    emaDecay: Math.min(0.999, 1 - 10 / steps),
  };
  const task = prefixLmTask(model, batcher, {
    ...taskOptions,
    val,
    samples: requests.length ? { generator, requests } : undefined,
  });
  process.stderr.write(
    `lm ${o.preset}: ${model.parameterCount().toLocaleString()} parameters, ` +
      `vocabulary ${layout.size}, sequences up to ${maxLength}, ` +
      `tasks ${Object.entries(mixture)
        .map(([t, w]) => `${t}=${w}`)
        .join(' ')}, ${steps} steps of ${batchSize}\n`,
  );
  return trainLoop(task, {
    runDir: o.out,
    totalSteps: steps,
    config: runConfig as unknown as Record<string, unknown>,
    batches: (start) => lmBatches(train, batcher, taskOptions, start),
    evalEvery: o.evalEvery ?? Math.max(50, Math.round(steps / 10)),
    checkpointEvery: Math.max(50, Math.round(steps / 20)),
    best: val ? { metric: 'nll', mode: 'min' } : undefined,
    quiet: o.quiet,
    stopAfter: o.stopAfter,
  });
}
