import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Tensor } from '../../engine/core.js';
import { openSafetensors } from '../../io/safetensors-file.js';
import { checkFinite, checkpointDir } from '../../nn/checkpoint.js';
import { buildForLoading, fromSafe } from '../../nn/index.js';
import { saveTensors } from '../../nn/weights-file.js';
import type { LarpTokenizer } from '../../tokenizers/larp/tokenizer.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError } from '../../util/errors.js';
import {
  checkLarpArWeights,
  type LarpArConfig,
  parseLarpArConfig,
  type WeightEntry,
  weightProblemMessage,
} from './config.js';
import { LarpAr } from './model.js';
import { UCF101_CLASSES } from './ucf101.js';

/**
 * A LARP AR model directory: the reference config under its own names, the weights under the reference's names, and
 * the LARP tokenizer whose tokens the model draws (a vtok LARP tokenizer run or model directory, inside it or beside
 * it). It has a run directory's shape, so the checkpoint machinery reads it:
 *
 *   config.json   { model: { kind: 'larp-ar', config: <ModelArgs as the released config.json> },
 *                   tokenizer: 'tokenizer', fps, class_names, sampling, cond_frames, source }
 *   checkpoints/  best.json / latest.json → step-0000000/model.safetensors (+ state.json)
 *   tokenizer/    (when it is inside) the LARP tokenizer's directory
 *
 * `sampling` holds the reference's sampling settings (its names), the defaults of `vtok generate`; `class_names`
 * the label of each class id (UCF-101's for a 101-class model unless given); `cond_frames` how many frames of a
 * video condition frame prediction (the reference's 5).
 */
export const LARP_AR_KIND = 'larp-ar';

export interface LarpArSampling {
  cfg_scale: number;
  cfg_interval: number;
  temperature: number;
  top_k: number;
  top_p: number;
}

export interface LarpArDirConfig {
  model: { kind: typeof LARP_AR_KIND; config: Record<string, unknown> };
  /** The LARP tokenizer's directory, relative to the model directory or absolute. */
  tokenizer: string;
  fps: number;
  class_names: string[] | null;
  sampling: LarpArSampling;
  cond_frames: number;
  /** Where it came from (an import's repository, revision, files): kept as given. */
  source?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The reference's settings: sample.py's UCF-101 command guides at 1.25; frame prediction never guides. */
export function referenceSampling(c: LarpArConfig): LarpArSampling {
  return { cfg_scale: c.frame_prediction ? 1 : 1.25, cfg_interval: -1, temperature: 1, top_k: 0, top_p: 1 };
}

export interface LarpArGenerator {
  kind: typeof LARP_AR_KIND;
  dir: string;
  model: LarpAr;
  config: LarpArDirConfig;
  tokenizer: LarpTokenizer;
  tokenizerDir: string;
  fps: number;
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new VtokError('no such file', path);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new VtokError('is not valid JSON', path);
  }
}

/** A model directory's config.json, checked (the model config parsed, the rest filled with defaults). */
export function readLarpArDirConfig(dir: string): { config: LarpArDirConfig; model: LarpArConfig } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new VtokError('no such model directory', dir);
  const path = join(dir, 'config.json');
  const c = readJson(path) as LarpArDirConfig;
  if (c?.model?.kind !== LARP_AR_KIND) throw new VtokError(`model.kind is not "${LARP_AR_KIND}"`, path);
  if (!c.model.config || typeof c.model.config !== 'object')
    throw new VtokError('config.json has no model.config', path);
  const model = parseLarpArConfig(c.model.config, path);
  if (typeof c.tokenizer !== 'string') throw new VtokError('config.json names no tokenizer directory', path);
  const sampling = { ...referenceSampling(model), ...c.sampling };
  for (const [k, v] of Object.entries(sampling))
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new VtokError(`sampling.${k} must be a number`, path);
  const names = c.class_names ?? (!model.frame_prediction && model.num_classes === 101 ? [...UCF101_CLASSES] : null);
  if (names !== null && (!Array.isArray(names) || names.length !== model.num_classes))
    throw new VtokError(`class_names must list the ${model.num_classes} classes`, path);
  const config: LarpArDirConfig = {
    ...c,
    fps: typeof c.fps === 'number' && c.fps > 0 ? c.fps : 8,
    class_names: names,
    sampling,
    cond_frames: c.cond_frames ?? 5,
  };
  return { config, model };
}

/** Whether a directory's config.json names this kind (a cheap look before loading). */
export function isLarpArDir(dir: string): boolean {
  try {
    return (readJson(join(dir, 'config.json')) as LarpArDirConfig)?.model?.kind === LARP_AR_KIND;
  } catch {
    return false;
  }
}

/**
 * Reads a safetensors file's weights into a model, one tensor at a time (a 2.5 GB file is never held twice):
 * names and shapes are checked against the config from the header first, every problem listed at once.
 */
export function loadLarpArWeights(model: LarpAr, file: string): void {
  const f = openSafetensors(file);
  try {
    const entries = new Map<string, WeightEntry>(
      [...f.tensors].map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]),
    );
    const problem = weightProblemMessage(checkLarpArWeights(model.ref, entries));
    if (problem) throw new VtokError(problem, file);
    for (const [name, p] of model.namedParams()) {
      // float16/bfloat16 files load as float32 (checkLarpArWeights allowed only float dtypes)
      const t = fromSafe(f.read(name), name);
      checkFinite(new Map([[name, t]]), () => file);
      p.value = t;
    }
  } finally {
    f.close();
  }
}

/** The weights file of a model directory: its best checkpoint's (else the latest's) model.safetensors. */
export function larpArWeightsFile(dir: string): string {
  const ck = checkpointDir(dir, 'best') ?? checkpointDir(dir, 'latest');
  if (!ck) throw new VtokError('the model directory has no checkpoint', dir);
  return join(ck, 'model.safetensors');
}

/** Builds a config's model without drawing work that the loaded weights replace. */
export function buildLarpAr(c: LarpArConfig): LarpAr {
  return buildForLoading(() => new LarpAr(c));
}

/** Checks that a LARP tokenizer's tokens are what a model draws (codebook, tokens per clip). */
export function checkLarpArTokenizer(c: LarpArConfig, tok: Tokenizer, where: string): asserts tok is LarpTokenizer {
  if (tok.kind !== 'larp')
    throw new VtokError(`the tokenizer is ${tok.kind}, a LARP AR model needs a LARP tokenizer`, where);
  const t = tok as LarpTokenizer;
  if (t.vocabSize !== c.vocab_size || t.tokens !== c.max_seq_len)
    throw new VtokError(
      `the tokenizer gives ${t.tokens} tokens of ${t.vocabSize} codes; ` +
        `the model draws ${c.max_seq_len} of ${c.vocab_size}`,
      where,
    );
  if (c.frame_prediction && c.cls_token_num !== t.tokens + 1)
    throw new VtokError(
      `the model's condition is ${c.cls_token_num} ids, a clip's tokens + separator are ${t.tokens + 1}`,
      where,
    );
}

export const larpArTokenizerDir = (dir: string, c: LarpArDirConfig): string =>
  isAbsolute(c.tokenizer) ? c.tokenizer : resolve(dir, c.tokenizer);

/** Loads a LARP AR model directory for generation: config, weights (streamed), its tokenizer; one clear error each. */
export function loadLarpAr(dir: string): LarpArGenerator {
  const { config, model: ref } = readLarpArDirConfig(dir);
  const tokenizerDir = larpArTokenizerDir(dir, config);
  if (!existsSync(tokenizerDir))
    throw new VtokError(`the tokenizer directory ${tokenizerDir} named in config.json is missing`, dir);
  const { tokenizer } = loadTokenizer(tokenizerDir);
  checkLarpArTokenizer(ref, tokenizer, tokenizerDir);
  const T = tokenizer.clipFrames;
  const frames = config.cond_frames;
  if (ref.frame_prediction && !(Number.isInteger(frames) && frames >= 1 && frames <= T))
    throw new VtokError(`cond_frames ${config.cond_frames} must be in [1, ${T}] (the tokenizer's clip)`, dir);
  const model = buildLarpAr(ref);
  loadLarpArWeights(model, larpArWeightsFile(dir));
  model.eval();
  return { kind: LARP_AR_KIND, dir, model, config, tokenizer, tokenizerDir, fps: config.fps };
}

export interface WriteLarpArOptions {
  /** The reference config (ModelArgs as a flat dict). */
  config: Record<string, unknown>;
  /** The weights: a safetensors file under the reference's names (copied as it is), or tensors. */
  weights: string | Map<string, Tensor>;
  /** The LARP tokenizer's directory: copied into `tokenizer/` with copyTokenizer, else named (relative when beside). */
  tokenizer: string;
  copyTokenizer?: boolean;
  fps?: number;
  classNames?: string[] | null;
  sampling?: Partial<LarpArSampling>;
  condFrames?: number;
  source?: Record<string, unknown>;
}

/**
 * Writes a LARP AR model directory at `out` (which must not exist): built in a temporary directory beside it and
 * renamed into place, so a failure (a bad config, weights that do not fit it, a full disk) leaves nothing at `out`.
 * The weights are checked against the config before anything is written.
 */
export function writeLarpArDir(out: string, o: WriteLarpArOptions): void {
  if (existsSync(out)) throw new VtokError('already exists (choose a new directory)', out);
  const ref = parseLarpArConfig(o.config);
  if (typeof o.weights === 'string') {
    const f = openSafetensors(o.weights);
    f.close();
    const problem = weightProblemMessage(checkLarpArWeights(ref, f.tensors));
    if (problem) throw new VtokError(problem, o.weights);
  } else {
    const entries = new Map([...o.weights].map(([k, t]) => [k, { dtype: 'F32', shape: t.shape }]));
    const problem = weightProblemMessage(checkLarpArWeights(ref, entries));
    if (problem) throw new VtokError(problem);
  }
  const tmp = `${resolve(out)}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const ck = join(tmp, 'checkpoints', 'step-0000000');
    mkdirSync(ck, { recursive: true });
    const weights = join(ck, 'model.safetensors');
    if (typeof o.weights === 'string') copyFileSync(o.weights, weights);
    else saveTensors(weights, o.weights, { format: 'pt' });
    writeFileAtomic(join(ck, 'state.json'), JSON.stringify({ step: 0 }));
    for (const p of ['latest', 'best'])
      writeFileAtomic(join(tmp, 'checkpoints', `${p}.json`), JSON.stringify({ dir: 'step-0000000', step: 0 }));
    let tokenizer: string;
    if (o.copyTokenizer) {
      cpSync(o.tokenizer, join(tmp, 'tokenizer'), { recursive: true });
      tokenizer = 'tokenizer';
    } else {
      // beside the model directory: a relative path, so that the two move together; elsewhere: absolute
      const abs = resolve(o.tokenizer);
      tokenizer = dirname(abs) === dirname(resolve(out)) ? relative(resolve(out), abs) : abs;
    }
    const config: LarpArDirConfig = {
      model: { kind: LARP_AR_KIND, config: o.config },
      tokenizer,
      fps: o.fps ?? 8,
      class_names: o.classNames ?? null,
      sampling: { ...referenceSampling(ref), ...o.sampling },
      cond_frames: o.condFrames ?? 5,
      ...(o.source ? { source: o.source } : {}),
    };
    writeFileAtomic(join(tmp, 'config.json'), JSON.stringify(config, null, 2));
    mkdirSync(dirname(resolve(out)), { recursive: true });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** What a Hugging Face folder of LARP's AR model holds, read and checked (the weights by their header only). */
export interface LarpArHubFolder {
  /** The reference config as config.json gives it. */
  raw: Record<string, unknown>;
  config: LarpArConfig;
  weightsFile: string;
}

/**
 * Reads a folder as huggingface_hub's `PyTorchModelHubMixin` writes `LARP_AR` (config.json: the ModelArgs dataclass
 * as a flat dict, or wrapped as {"config": {...}}; model.safetensors) and checks the weights' names and shapes
 * against the config without reading them: missing, unexpected and mis-shaped names are listed in one error.
 */
export function readLarpArHubFolder(folder: string): LarpArHubFolder {
  const path = join(folder, 'config.json');
  let raw = readJson(path) as Record<string, unknown>;
  const inner = raw?.config;
  if (inner && typeof inner === 'object' && !Array.isArray(inner) && Object.keys(raw).length === 1)
    raw = inner as Record<string, unknown>;
  const config = parseLarpArConfig(raw, path);
  const weightsFile = join(folder, 'model.safetensors');
  if (!existsSync(weightsFile)) throw new VtokError('no model.safetensors beside config.json', folder);
  const f = openSafetensors(weightsFile);
  f.close();
  const problem = weightProblemMessage(checkLarpArWeights(config, f.tensors));
  if (problem) throw new VtokError(problem, weightsFile);
  return { raw, config, weightsFile };
}

/**
 * A LARP AR model directory from a Hugging Face folder (hywang66/LARP-L-long-AR or -AR-FP as downloaded) and the
 * vtok directory of its LARP tokenizer (hywang66/LARP-L-long-tokenizer, imported): the folder is checked, the
 * weights copied as they are, UCF-101's class names attached to a 101-class class-conditional model, and the
 * tokenizer checked against the model (codebook, tokens per clip). Returns what was read.
 */
export function larpArFromHubFolder(
  folder: string,
  out: string,
  o: { tokenizer: string; copyTokenizer?: boolean; source?: Record<string, unknown>; fps?: number },
): LarpArHubFolder {
  const hub = readLarpArHubFolder(folder);
  const { tokenizer } = loadTokenizer(o.tokenizer);
  checkLarpArTokenizer(hub.config, tokenizer, o.tokenizer);
  const ucf = !hub.config.frame_prediction && hub.config.num_classes === 101;
  writeLarpArDir(out, {
    config: hub.raw,
    weights: hub.weightsFile,
    tokenizer: o.tokenizer,
    copyTokenizer: o.copyTokenizer,
    fps: o.fps,
    classNames: ucf ? [...UCF101_CLASSES] : null,
    source: o.source,
  });
  return hub;
}
