import { VtokError, check } from '../util/errors.js';
import {
  composeSequence,
  concatFrames,
  latentFrames,
  parseSequence,
  sameGrid,
  visualOutputPlan,
  type Composition,
  type LmSequence,
  type OutputStep,
  type VisualTokens,
} from './sequence.js';
import type { TextTokens } from './text/encoder.js';
import {
  classLabel,
  hasTextSlot,
  layoutTasks,
  outputSize,
  trainedCondFrames,
  type OutputSize,
  type TextSlots,
  type VocabLayout,
} from './vocab.js';

/**
 * The task registry (VideoPoet §4.1, spec §7). A task says which conditioning its prefix holds and which part of
 * a clip its output is; `composeSequence` does the layout. Adding a task (inpaint, stylize, v2a, …) is one
 * `registerTask` call.
 *
 * Inputs. `target` is a whole clip of the output size (training data): the task takes its output — and for
 * self-supervised tasks (fp, i2v) its conditioning — from it. At sampling time `video`/`image` give the
 * conditioning instead and `target` is absent, so only the prefix is built.
 */
export interface TaskInputs {
  /** Tokenized prompt(s); only its maxTokens (the text slot's length) shapes the sequence. */
  textTokens?: TextTokens;
  /** Conditioning video (fp): a [t, h, w] clip whose first `condFrames` latent frames condition the output. */
  video?: VisualTokens;
  /** Conditioning image (i2v): [1, h, w] or [h, w] tokens (the first latent frame of a video). */
  image?: VisualTokens;
  /** Class label (class task): its number, or its name where the model keeps the names. */
  label?: number | string;
  /** Output size key (`HxW`); default: the model's only one. */
  res?: string;
  /** fp: latent frames to condition on (one of those the model was trained with, `trainedCondFrames`; default 1). */
  condFrames?: number;
  /** The whole clip to learn (training). */
  target?: VisualTokens;
}

export interface TaskSpec {
  name: string;
  description: string;
  /** Whether the prompt has text. */
  text: 'none' | 'optional' | 'required';
  /** Needs a [t, h, w] token grid (a spatial tokenizer, MAGVIT-v2), not LARP's holistic [n]. */
  spatial?: boolean;
  /** What a sampling request gives it beside text: i2v an image, fp a video to continue, class a label. */
  given?: 'image' | 'video' | 'label';
  /** Its output is one image: it has no length, so no extensions (t2i). */
  still?: boolean;
  /** The sequence's parts for these inputs and output size. */
  compose(layout: VocabLayout, x: TaskInputs, size: OutputSize): Omit<Composition, 'task' | 'res' | 'textLength'>;
  /**
   * The whole clip from a parsed sequence: the output alone, or the conditioning frames followed by it (fp, i2v).
   */
  clip(input: VisualTokens | undefined, output: VisualTokens): VisualTokens;
}

const tasks = new Map<string, TaskSpec>();

export function registerTask(spec: TaskSpec): void {
  check(
    /^[a-z0-9_]+$/.test(spec.name),
    `task name must be lowercase letters, digits or _, got ${JSON.stringify(spec.name)}`,
  );
  tasks.set(spec.name, spec);
}

export function getTask(name: string): TaskSpec {
  const t = tasks.get(name);
  if (!t) throw new VtokError(`unknown task "${name}" (known: ${taskNames().join(', ')})`);
  return t;
}

export const taskNames = (): string[] => [...tasks.keys()];

/** Other names of tasks for sampling requests (`vtok generate --task continue`). */
const ALIASES: Record<string, string> = { continue: 'fp' };

/** The registered name of a task named in a sampling request. */
export const resolveTaskName = (name: string): string => ALIASES[name] ?? name;

/** What a sampling request may give a task, by GenerateOptions' names (the CLI's options of the same names). */
export const SAMPLING_INPUTS = ['prompt', 'image', 'video', 'label', 'condFrames', 'seconds'] as const;
export type SamplingInput = (typeof SAMPLING_INPUTS)[number];

const INPUT_WORDS: Record<SamplingInput, string> = {
  prompt: 'text prompt',
  image: 'image',
  video: 'video',
  label: 'class label',
  condFrames: 'condFrames',
  seconds: 'seconds',
};

/**
 * The inputs a task takes: a prompt unless it has no text, its conditioning, a length unless its output is one
 * image, and condFrames where it continues a video or (`seconds`) where a length asks for extensions.
 */
export function samplingInputs(task: string, o: { seconds?: boolean } = {}): SamplingInput[] {
  const spec = getTask(resolveTaskName(task));
  const takes: SamplingInput[] = spec.text === 'none' ? [] : ['prompt'];
  if (spec.given) takes.push(spec.given);
  if (!spec.still) takes.push('seconds');
  if (spec.given === 'video' || (!spec.still && o.seconds)) takes.push('condFrames');
  return takes;
}

/**
 * Refuses an input (one not undefined in `given`) that the task does not take, naming it by `name` (the CLI's
 * option names; default: words): an input that would be ignored is a mistake the user should hear of.
 */
export function checkSamplingInputs(
  task: string,
  given: Partial<Record<SamplingInput, unknown>>,
  name: (k: SamplingInput) => string = (k) => INPUT_WORDS[k],
): void {
  const takes = samplingInputs(task, { seconds: given.seconds !== undefined });
  for (const k of SAMPLING_INPUTS) {
    if (given[k] === undefined || takes.includes(k)) continue;
    const all = samplingInputs(task, { seconds: true });
    const without = all.includes(k) ? ` without ${name('seconds')}` : '';
    throw new VtokError(`task ${task} takes no ${name(k)}${without} (it takes: ${all.map(name).join(', ')})`);
  }
}

/**
 * The text slots of a model trained on `tasks` with a text encoder of `length` tokens: every task that takes text
 * has one, with or without a prompt (a clip without a caption, or a prompt hidden by condition dropout, leaves its
 * keys hidden).
 */
export function textSlotsFor(tasks: string[], length: number): TextSlots {
  return { tasks: tasks.filter((t) => getTask(t).text !== 'none'), length };
}

/**
 * The text slots of a model saved before layouts recorded them: t2v, t2i and i2v had one (their clips all had
 * captions), frame prediction never did.
 */
export function legacyTextSlots(layout: VocabLayout, length: number): TextSlots {
  return { tasks: layoutTasks(layout).filter((t) => ['t2v', 't2i', 'i2v'].includes(t)), length };
}

/** Refuses a task the model's vocabulary has no token for (a model trained without it). */
function checkModelTask(layout: VocabLayout, task: string): void {
  if (!(`<task_${task}>` in layout.special))
    throw new VtokError(`unknown task "${task}" for this model (it knows: ${layoutTasks(layout).join(', ')})`);
}

function composition(layout: VocabLayout, task: string, x: TaskInputs): Composition {
  const spec = getTask(task);
  checkModelTask(layout, task);
  const size = outputSize(layout, x.res);
  if (spec.spatial)
    check(
      size.grid.length === 3,
      () => `task ${task} needs a tokenizer with a [t, h, w] token grid; this model's is [${size.grid}]`,
    );
  if (spec.text === 'required') check(x.textTokens, `task ${task} needs a text prompt`);
  if (spec.text === 'none') check(!x.textTokens, `task ${task} takes no text prompt`);
  if (x.textTokens) check(x.textTokens.count >= 1 && x.textTokens.maxTokens > 0, 'empty text tokens');
  const slot = hasTextSlot(layout, task);
  if (slot === false) check(!x.textTokens, `task ${task} of this model takes no text prompt (it was trained without)`);
  if (slot && x.textTokens)
    check(
      x.textTokens.maxTokens === layout.text!.length,
      `the text tokens are ${x.textTokens.maxTokens} wide, the model's text slot ${layout.text!.length}`,
    );
  if (x.target)
    check(
      sameGrid(x.target.grid, size.grid),
      () => `the clip has token grid [${x.target!.grid}], the model's ${size.key} clips have [${size.grid}]`,
    );
  // a slot task without a prompt keeps its slot (hidden by the sampler), the layout condition dropout trains
  const textLength = slot ? layout.text!.length : x.textTokens?.maxTokens;
  return { task, res: size.key, textLength, ...spec.compose(layout, x, size) };
}

/** The task's sequence: prefix only, or prefix + output when `x.target` is given (training). */
export function buildSequence(layout: VocabLayout, task: string, x: TaskInputs): LmSequence {
  return composeSequence(layout, composition(layout, task, x));
}

/** What the sampler produces after the task's prefix. */
export function outputPlan(layout: VocabLayout, task: string, x: TaskInputs): OutputStep[] {
  return visualOutputPlan(layout, composition(layout, task, x).outputGrid);
}

/**
 * Length of a task's training sequence for clips of output size `res` (for grouping shards by length, AGD): the
 * sequence built from a placeholder clip of that size.
 */
export function sequenceLength(
  layout: VocabLayout,
  task: string,
  x: { textTokens?: TextTokens; res?: string; label?: number | string; condFrames?: number },
): number {
  const size = outputSize(layout, x.res);
  const target = { ids: new Int32Array(size.grid.reduce((a, b) => a * b, 1)), grid: size.grid };
  return buildSequence(layout, task, { ...x, target }).ids.length;
}

export interface ParsedOutput {
  task: string;
  res: string;
  label?: number;
  /** The conditioning visual tokens (fp, i2v). */
  input?: VisualTokens;
  /** The generated visual tokens. */
  output: VisualTokens;
  /** The whole clip to decode (conditioning frames + output where the task continues them). */
  clip: VisualTokens;
}

/**
 * Parses a whole generated sequence into the tokens to decode: `ids` is prefix + output, or the prefix alone with
 * the sampler's output ids as `generated`.
 */
export function parseOutput(layout: VocabLayout, ids: Int32Array, generated?: ArrayLike<number>): ParsedOutput {
  if (generated) {
    const all = new Int32Array(ids.length + generated.length);
    all.set(ids);
    all.set(generated, ids.length);
    ids = all;
  }
  const p = parseSequence(layout, ids);
  const spec = getTask(p.task);
  const vis = (role: 'input' | 'output') => {
    const s = p.segments.find((q) => q.kind === 'visual' && q.role === role);
    return s ? { ids: s.ids, grid: s.grid! } : undefined;
  };
  const input = vis('input');
  const output = vis('output')!;
  return { task: p.task, res: p.res, label: p.label, input, output, clip: spec.clip(input, output) };
}

// ---------------------------------------------------------------------------------------------------- the tasks

const wholeClip = (_layout: VocabLayout, x: TaskInputs, size: OutputSize) => ({
  outputGrid: size.grid,
  output: x.target,
});
const outputOnly = (_in: VisualTokens | undefined, out: VisualTokens) => out;
const continued = (input: VisualTokens | undefined, out: VisualTokens) => (input ? concatFrames([input, out]) : out);

registerTask({
  name: 'uncond',
  description: 'unconditional video',
  text: 'none',
  compose: wholeClip,
  clip: outputOnly,
});

registerTask({ name: 't2v', description: 'text to video', text: 'required', compose: wholeClip, clip: outputOnly });

/*
 * Text to image follows the paper: an image is a one-frame video. Its sequence is a video's with one latent frame
 * of output, closed by the same <eov_o> <eos> (no end-of-image token, no image-only output size), and its target is
 * a clip's first latent frame, which a causal tokenizer encodes alone (MAGVIT-v2 §3.1): the tokens of an image are
 * those of a video that starts with it. That holds exactly for a tokenizer with per-frame normalisation
 * (`causal_norm`, the shipped natural-video model); one with clip-wide statistics (the shipped Moving MNIST
 * tokenizer) codes a frame alone a little differently from the same frame at the start of a clip (about half its
 * tokens differ), so its t2i learns a clip's first latent frame — what t2v begins with, which the image-first
 * phase is for — and an image given to i2v, tokenized alone, is slightly off what training conditioned on.
 */
registerTask({
  name: 't2i',
  description: 'text to image (a one-latent-frame video)',
  text: 'required',
  spatial: true,
  still: true,
  compose: (_l, x, size) => ({
    outputGrid: [1, size.grid[1]!, size.grid[2]!],
    output: x.target && latentFrames(x.target, 0, 1),
  }),
  clip: outputOnly,
});

registerTask({
  name: 'fp',
  description:
    'frame prediction / continuation: the first latent frames given (up to about a second), the rest generated, ' +
    'with or without text (so that the extensions of a long video keep its prompt)',
  text: 'optional',
  spatial: true,
  given: 'video',
  compose: (layout, x, size) => {
    const k = x.condFrames ?? 1;
    const [t, h, w] = size.grid as [number, number, number];
    const trained = trainedCondFrames(layout);
    check(
      trained.includes(k),
      `fp conditions on ${k} latent frame(s); this model was trained on ${trained.join(' or ')}`,
    );
    check(t > k, `fp needs clips longer than ${k} latent frames; the model's are ${t}`);
    const video = x.video ?? x.target;
    if (!video) throw new VtokError('task fp needs a video to continue');
    check(
      video.grid.length === 3 && video.grid[1] === h && video.grid[2] === w,
      () =>
        `the video has token grid [${video.grid}], the model's frames are ${h}×${w} tokens (output size ${size.key})`,
    );
    check(video.grid[0]! >= k, () => `the video is too short for fp: ${video.grid[0]} latent frame(s), need ${k}`);
    return {
      visualInput: latentFrames(video, 0, k),
      outputGrid: [t - k, h, w],
      output: x.target && latentFrames(x.target, k, t),
    };
  },
  clip: continued,
});

registerTask({
  name: 'i2v',
  description: 'image to video (the image is the first latent frame), with or without text',
  text: 'optional',
  spatial: true,
  given: 'image',
  compose: (_l, x, size) => {
    const [t, h, w] = size.grid as [number, number, number];
    check(t > 1, `i2v needs clips longer than one latent frame; the model's are ${t}`);
    let image = x.image ?? (x.target && latentFrames(x.target, 0, 1));
    if (!image) throw new VtokError('task i2v needs an image');
    if (image.grid.length === 2) image = { ids: image.ids, grid: [1, ...image.grid] };
    check(
      sameGrid(image.grid, [1, h, w]),
      () => `the image has token grid [${image!.grid}], the model's frames are [1,${h},${w}] (output size ${size.key})`,
    );
    return { visualInput: image, outputGrid: [t - 1, h, w], output: x.target && latentFrames(x.target, 1, t) };
  },
  clip: continued,
});

registerTask({
  name: 'class',
  description: 'class-conditional video (a <class_K> label token)',
  text: 'none',
  given: 'label',
  compose: (layout, x, size) => {
    if (x.label === undefined) throw new VtokError('task class needs a class label');
    return { label: classLabel(layout, x.label), outputGrid: size.grid, output: x.target };
  },
  clip: outputOnly,
});

// ---------------------------------------------------------------------------------------- long videos (§9)

/**
 * Frames to re-tokenize for the next extension: the last `condFrames` latent frames of a causal tokenizer that
 * compresses time by `temporalStride` cover the last 1 + stride·(condFrames − 1) frames (its first frame alone).
 */
export const framesForLatent = (condFrames: number, temporalStride: number): number =>
  1 + temporalStride * (condFrames - 1);

/**
 * Latent frames that cover the last second of video at `fps` (VideoPoet §9: 9 frames = 3 latent frames of a 4×
 * temporal tokenizer at 8 fps): the fewest whose frames span a second.
 */
export const latentFramesOfSecond = (temporalStride: number, fps: number): number =>
  1 + Math.ceil((fps - 1) / temporalStride);

/**
 * The latent frames frame-prediction rows condition on in training, one drawn per row: 1 up to a second's worth
 * (the paper's 1–3 for 17-frame clips), leaving at least two latent frames to generate where the clip allows.
 */
export function trainingCondFrames(latentFrames: number, temporalStride: number, fps: number): number[] {
  const most = Math.max(1, Math.min(latentFramesOfSecond(temporalStride, fps), latentFrames - 2));
  return Array.from({ length: most }, (_, i) => i + 1);
}

/**
 * The latent frames that condition an extension (and a continued video) by default: the last second, as far as the
 * model was trained to condition on.
 */
export function extensionCondFrames(layout: VocabLayout, temporalStride: number, fps: number): number {
  const trained = trainedCondFrames(layout);
  const second = latentFramesOfSecond(temporalStride, fps);
  const fit = trained.filter((k) => k <= second);
  return fit.length ? Math.max(...fit) : Math.min(...trained);
}

/**
 * The next fp prompt of a long video: `retokenized` is the tail of the clip generated so far, decoded and
 * tokenized again by the caller (so the condition is what the tokenizer sees at the start of a clip); its last
 * `condFrames` latent frames condition the next clip. `textTokens`: the video's prompt, kept where the model's
 * frame prediction takes text.
 */
export function extensionPrompt(
  layout: VocabLayout,
  retokenized: VisualTokens,
  opts: { condFrames?: number; res?: string; textTokens?: TextTokens } = {},
): { sequence: LmSequence; plan: OutputStep[] } {
  const k = opts.condFrames ?? 1;
  check(
    retokenized.grid.length === 3 && retokenized.grid[0]! >= k,
    () => `an extension needs at least ${k} latent frame(s), got token grid [${retokenized.grid}]`,
  );
  const t = retokenized.grid[0]!;
  const x: TaskInputs = {
    video: latentFrames(retokenized, t - k, t),
    condFrames: k,
    res: opts.res,
    textTokens: opts.textTokens,
  };
  return { sequence: buildSequence(layout, 'fp', x), plan: outputPlan(layout, 'fp', x) };
}
