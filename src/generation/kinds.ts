import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame } from '../io/frame.js';
import { readLastFrames } from '../io/video.js';
import { inferenceWeights } from '../nn/checkpoint.js';
import { loadTensors } from '../nn/weights-file.js';
import type { ParityModel } from '../parity/golden.js';
import { registerParity } from '../parity/index.js';
import { tokenizerKind, tokenizerKinds } from '../tokenizers/registry.js';
import { VtokError } from '../util/errors.js';
import { runStepsAsync, type StepsOutcome } from '../util/steps.js';
import { type GenerateOptions, type GenerateResult, generateSteps, videoFramesNeeded } from './generate.js';
import { larpArGenerateSteps, LARP_AR_TASKS } from './larp-ar/generate.js';
import {
  LARP_AR_KIND,
  type LarpArGenerator,
  larpArWeightsFile,
  loadLarpAr,
  readLarpArDirConfig,
} from './larp-ar/model-dir.js';
import { larpArParity } from './larp-ar/parity.js';
import { type Generator, LM_KIND, loadGenerator } from './model-dir.js';
import { checkSamplingInputs, SAMPLING_INPUTS, type SamplingInput } from './tasks.js';

/**
 * The generator kinds a model directory can be, and what dispatches on them: `vtok generate` loads any of them and
 * runs its own sampling (the prefix LM's tasks, or LARP's AR model), and `vtok parity --model` runs a golden case
 * through a model directory's weights. The CLI names no kind; it asks here. Importing this file registers the
 * generator kinds' parity cases (as the tokenizer registry does for the tokenizers').
 */
export type LoadedGenerator =
  | { kind: typeof LM_KIND; gen: Generator }
  | { kind: typeof LARP_AR_KIND; gen: LarpArGenerator };
export type GeneratorKind = LoadedGenerator['kind'];

for (const [name, run] of Object.entries(larpArParity)) registerParity(name, run);

function modelKind(dir: string): string | undefined {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new VtokError('no such model directory', dir);
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new VtokError('no config.json: not a vtok model directory', dir);
  try {
    return JSON.parse(readFileSync(path, 'utf8'))?.model?.kind;
  } catch {
    throw new VtokError('config.json is not valid JSON', path);
  }
}

/** A model directory's generator kind, from its config.json alone (before loading anything big). */
export function generatorKindOf(dir: string): GeneratorKind {
  const kind = modelKind(dir);
  if (kind === LM_KIND || kind === LARP_AR_KIND) return kind;
  throw new VtokError(
    `not a generator (model.kind is ${JSON.stringify(kind)}; generators: ${LM_KIND}, ${LARP_AR_KIND})`,
    join(dir, 'config.json'),
  );
}

export function loadAnyGenerator(dir: string): LoadedGenerator {
  return generatorKindOf(dir) === LARP_AR_KIND
    ? { kind: LARP_AR_KIND, gen: loadLarpAr(dir) }
    : { kind: LM_KIND, gen: loadGenerator(dir) };
}

/** A sampling request: the prefix LM's options, with a label by name or index and LARP's guidance schedule. */
export interface AnyGenerateOptions extends Omit<GenerateOptions, 'label'> {
  label?: number | string;
  /** LARP AR: the reference's cfg_interval (−1: every token guided). */
  cfgInterval?: number;
}

/**
 * Refuses an input the kind's task would ignore, by `name` (the CLI's option names): the prefix LM's task registry
 * says what each task takes; a LARP AR model's class task takes a label, its continue task a video and condFrames.
 */
export function checkGenerateInputs(
  kind: GeneratorKind,
  task: string,
  given: Partial<Record<SamplingInput | 'cfgInterval', unknown>>,
  name: (k: SamplingInput | 'cfgInterval') => string = (k) => k,
): void {
  if (kind === LM_KIND) {
    if (given.cfgInterval !== undefined) throw new VtokError(`${name('cfgInterval')} is for LARP AR models only`);
    checkSamplingInputs(task, given, name);
    return;
  }
  const spec = LARP_AR_TASKS[task];
  if (!spec) throw new VtokError(`task ${task} is not a LARP AR task (class, continue)`);
  const takes: SamplingInput[] = spec.given === 'label' ? ['label'] : ['video', 'condFrames'];
  for (const k of SAMPLING_INPUTS) {
    if (given[k] === undefined || takes.includes(k)) continue;
    throw new VtokError(`a LARP AR model's task ${task} takes no ${name(k)} (it takes: ${takes.map(name).join(', ')})`);
  }
}

/**
 * The frames of `--video` that a continuation conditions on, and only those (read from near the end): the prefix LM's
 * last `condFrames` latent frames (default: the last second it was trained on); LARP AR-FP's last `condFrames` video
 * frames (default the model's), resized and centre-cropped to its tokenizer's input.
 */
export function readConditioningVideo(g: LoadedGenerator, path: string, condFrames?: number): Promise<Frame[]> {
  if (g.kind === LM_KIND) return readLastFrames(path, videoFramesNeeded(g.gen, condFrames));
  const s = g.gen.tokenizer.model.cfg.inputSize;
  return readLastFrames(path, condFrames ?? g.gen.config.cond_frames, { size: s, crop: s });
}

/**
 * Generates with any generator kind, handing the event loop a turn about every 100 ms and asking `stop` whether to
 * go on (see generateAsync).
 */
export function generateAnyAsync(
  g: LoadedGenerator,
  o: AnyGenerateOptions,
  stop: () => Promise<boolean>,
): Promise<StepsOutcome<GenerateResult>> {
  if (g.kind === LARP_AR_KIND) return runStepsAsync(larpArGenerateSteps(g.gen, o), stop);
  // the prefix LM resolves a label by number or by its layout's class names (classLabel)
  const { cfgInterval: _, ...rest } = o;
  return runStepsAsync(generateSteps(g.gen, rest), stop);
}

/**
 * A model directory's config and weights for `vtok parity --model`: a LARP AR model directory, or a tokenizer's run
 * or model directory, when the golden case is one of its kind's.
 */
export function parityModel(dir: string, caseName: string): ParityModel {
  const kind = modelKind(dir);
  if (kind === LARP_AR_KIND) {
    if (!(caseName in larpArParity))
      throw new VtokError(
        `a ${LARP_AR_KIND} model directory runs the cases ${Object.keys(larpArParity).join(', ')}, not ${caseName}`,
        dir,
      );
    const { config } = readLarpArDirConfig(dir);
    const file = larpArWeightsFile(dir);
    return { config: config.model.config, params: loadTensors(file).tensors, source: dir };
  }
  if (kind !== undefined && tokenizerKinds().includes(kind)) {
    const cases = Object.keys(tokenizerKind(kind).parity ?? {});
    if (!cases.includes(caseName))
      throw new VtokError(`a ${kind} tokenizer runs the cases ${cases.join(', ') || 'none'}, not ${caseName}`, dir);
    const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    return { config: raw.model.config, params: inferenceWeights(dir).weights, source: dir };
  }
  throw new VtokError(`model kind ${JSON.stringify(kind)} has no golden cases`, dir);
}
