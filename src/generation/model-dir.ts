import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Tensor } from '../engine/core.js';
import { inferenceWeights } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { saveTensors } from '../nn/weights-file.js';
import { fromFloat32, toFloat32 } from '../io/tensor-data.js';
import { writeFileAtomic } from '../util/atomic.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { VtokError } from '../util/errors.js';
import { isOnnxText, TextPrefixLm, type OnnxTextRef, type TextPrefixLmConfig } from './prefix-lm/text-lm.js';
import { OnnxTextEncoder } from './text/onnx.js';
import { tokenizerIdentity } from '../tokenizers/identity.js';
import { legacyTextSlots } from './tasks.js';
import { checkTokenizer, layoutFromJson, type VocabLayout } from './vocab.js';

/**
 * A generator's model directory: the prefix LM with its text encoder, the vocabulary layout and the visual
 * tokenizer that the LM's ids belong to. It has the shape of a run directory, so a `vtok train lm` run loads as it
 * is (best checkpoint, EMA weights) and `vtok pack` makes a self-contained one:
 *
 *   config.json       { model: { kind: 'prefix-lm', config: { lm, text } }, layout, tokenizer, fps, … }
 *   checkpoints/      best.json / latest.json → step-…/model.safetensors (float16 when packed)
 *   text-encoder/     (packed, when the model uses a frozen ONNX text encoder) its folder, as it was
 *   tokenizer/        (packed) the tokenizer's run directory; `tokenizer` in config.json is a path relative to
 *                     this directory (a training run may name one elsewhere)
 */
export const LM_KIND = 'prefix-lm';

export interface LmDirConfig {
  model: { kind: typeof LM_KIND; config: TextPrefixLmConfig };
  layout: VocabLayout;
  /** The tokenizer's run directory, relative to the model directory or absolute. */
  tokenizer: string;
  /** Frame rate of generated video. */
  fps: number;
  [key: string]: unknown;
}

export interface Generator {
  dir: string;
  model: TextPrefixLm;
  layout: VocabLayout;
  tokenizer: Tokenizer;
  tokenizerDir: string;
  fps: number;
  config: LmDirConfig;
}

export function readLmConfig(dir: string): LmDirConfig {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new VtokError('no such model directory', dir);
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new VtokError('no config.json: not a vtok model directory', dir);
  let c: LmDirConfig;
  try {
    c = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new VtokError('config.json is not valid JSON', path);
  }
  if (c?.model?.kind !== LM_KIND || !c.model.config?.lm)
    throw new VtokError(
      `not a generator (model.kind is ${JSON.stringify(c?.model?.kind)}, expected "${LM_KIND}")`,
      path,
    );
  if (typeof c.tokenizer !== 'string') throw new VtokError('config.json names no tokenizer directory', path);
  c.layout = layoutFromJson(c.layout, path);
  // a model saved before layouts recorded their text slots: the slots it was trained with
  const text = c.model.config.text;
  if (!c.layout.text && text) c.layout.text = legacyTextSlots(c.layout, text.maxTokens);
  if (!(typeof c.fps === 'number' && c.fps > 0)) c.fps = 8;
  return c;
}

export const tokenizerDirOf = (dir: string, c: LmDirConfig): string =>
  isAbsolute(c.tokenizer) ? c.tokenizer : resolve(dir, c.tokenizer);

/** Loads a model directory (or a `vtok train lm` run) for generation; one clear error for anything wrong. */
export function loadGenerator(dir: string): Generator {
  const config = readLmConfig(dir);
  const tokenizerDir = tokenizerDirOf(dir, config);
  if (!existsSync(tokenizerDir))
    throw new VtokError(`the tokenizer directory ${tokenizerDir} named in config.json is missing`, dir);
  const { tokenizer, module } = loadTokenizer(tokenizerDir);
  checkTokenizer(config.layout, tokenizerIdentity(tokenizer, (module as Module).stateDict()), tokenizerDir);
  const text = config.model.config.text;
  const textDir = isOnnxText(text) ? (isAbsolute(text.dir) ? text.dir : resolve(dir, text.dir)) : undefined;
  const frozen = textDir ? OnnxTextEncoder.load(textDir) : undefined;
  const model = new TextPrefixLm(config.model.config, { frozen, source: textDir });
  if (model.lm.cfg.vocabSize !== config.layout.size)
    throw new VtokError(`the LM has ${model.lm.cfg.vocabSize} ids, its vocabulary layout ${config.layout.size}`, dir);
  const { weights, source } = inferenceWeights(dir);
  model.loadStateDict(weights, { source });
  model.eval();
  return { dir, model, layout: config.layout, tokenizer, tokenizerDir, fps: config.fps, config };
}

/** Writes a run directory with one checkpoint of inference weights (no optimizer state). */
function writeMinimalRun(
  dir: string,
  config: unknown,
  weights: Map<string, Tensor>,
  half: boolean,
  packedFrom: string,
): void {
  const ck = join(dir, 'checkpoints', 'step-0000000');
  mkdirSync(ck, { recursive: true });
  saveTensors(join(ck, 'model.safetensors'), weights, { packedFrom }, half ? 'F16' : undefined);
  writeFileAtomic(join(ck, 'state.json'), JSON.stringify({ step: 0, packedFrom }));
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const p of ['latest', 'best'])
    writeFileAtomic(join(dir, 'checkpoints', `${p}.json`), JSON.stringify({ dir: 'step-0000000', step: 0 }));
}

/** Whether every float32 weight survives float16 exactly (then storing it as float16 keeps its identity). */
function halfExact(weights: Map<string, Tensor>): boolean {
  for (const t of weights.values()) {
    if (t.dtype !== 'float32') continue;
    const d = t.data as Float32Array;
    const back = toFloat32(fromFloat32(d, [d.length], 'F16'));
    for (let i = 0; i < d.length; i++) if (back[i] !== d[i]) return false;
  }
  return true;
}

/**
 * Packs a generator run (or model directory) into a self-contained model directory: the LM's inference weights
 * (float16 with `half`) and a copy of the tokenizer under tokenizer/, stored losslessly (float16 only where that is
 * exact) so that its identity, which the LM checks, is unchanged.
 */
export function packGenerator(
  run: string,
  out: string,
  o: { half?: boolean } = {},
): { parameters: number; tokenizerHalf: boolean } {
  const gen = loadGenerator(run);
  const tokDir = join(out, 'tokenizer');
  const { module } = loadTokenizer(gen.tokenizerDir);
  const tokWeights = (module as Module).stateDict();
  const tokConfig = JSON.parse(readFileSync(join(gen.tokenizerDir, 'config.json'), 'utf8'));
  const tokenizerHalf = halfExact(tokWeights);
  writeMinimalRun(
    tokDir,
    { ...tokConfig, packed: { from: gen.tokenizerDir, half: tokenizerHalf } },
    tokWeights,
    tokenizerHalf,
    gen.tokenizerDir,
  );
  const { data: _data, train: _train, ...rest } = gen.config;
  let model = rest.model;
  if (gen.model.frozen) {
    // the frozen text encoder's folder is copied as it is (its files are what the LM was trained on)
    cpSync((gen.model.frozen as OnnxTextEncoder).dir, join(out, 'text-encoder'), { recursive: true });
    model = {
      ...model,
      config: { ...model.config, text: { ...(model.config.text as OnnxTextRef), dir: 'text-encoder' } },
    };
  }
  writeMinimalRun(
    out,
    { ...rest, model, tokenizer: 'tokenizer', packed: { from: resolve(run), half: !!o.half } },
    gen.model.stateDict(),
    !!o.half,
    resolve(run),
  );
  loadGenerator(out); // the packed directory must load (tokenizer identity, weights)
  return { parameters: gen.model.parameterCount(), tokenizerHalf };
}
