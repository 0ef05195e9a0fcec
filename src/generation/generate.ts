import { frameRange, framesToClip, joinClips } from '../io/clip.js';
import type { ClipTensor, Frame } from '../io/frame.js';
import { decodeTokens, encodeClips } from '../tokenizers/batch.js';
import { VtokError, check } from '../util/errors.js';
import type { SamplingOptions } from '../util/sampling.js';
import { runSteps, runStepsAsync, type Steps, type StepsOutcome } from '../util/steps.js';
import { PrefixLmDecoder } from './prefix-lm/decoder.js';
import { sampleSteps, type SampleProgress, type TextInput } from './sampler.js';
import { gridSize, type LmSequence, type OutputStep, type VisualTokens } from './sequence.js';
import {
  buildSequence,
  checkSamplingInputs,
  extensionPrompt,
  framesForLatent,
  getTask,
  outputPlan,
  parseOutput,
  resolveTaskName,
  type TaskInputs,
} from './tasks.js';
import type { Generator } from './model-dir.js';
import { outputSize } from './vocab.js';

/**
 * Generation with a loaded model directory: prompt → tokens → prefix → sampled output → tokenizer decode. Image and
 * video inputs are tokenized with the model's own tokenizer. Longer videos than one clip (`seconds`) grow by
 * VideoPoet's extension (§9): the last latent frames' worth of frames (`condFrames`, 1 or 2) is tokenized again and
 * continued by frame prediction, as often as needed. The batch-level steps, `sampleClips` (a batch of samples of one
 * task) and `extendClips`, are what `generate` and the studies both run.
 */
export interface GenerateOptions extends SamplingOptions {
  /** t2v | t2i | i2v | fp (alias continue) | uncond | class. */
  task: string;
  prompt?: string;
  /** i2v: the first frame. */
  image?: Frame;
  /** fp: the video to continue (its last frames condition the output). */
  video?: Frame[];
  /** class: the label. */
  label?: number;
  /**
   * fp and extensions: latent frames that condition each clip (1 or 2; default 1). More carries more of the motion
   * over; each extension then adds fewer new frames.
   */
  condFrames?: number;
  /** Length of the video; beyond one clip, extensions are added (default: one clip). */
  seconds?: number;
  /** Classifier-free guidance scale (default 1 = none; needs a text prompt). */
  cfg?: number;
  samples?: number;
  seed?: number;
  /** Decode steps with int8 weights (the blocks' linears and the head; see PrefixLmDecoder). Default fp32. */
  precision?: 'fp32' | 'int8';
  /** A colour image or video for a model that takes gray clips is converted, not refused (io/clip fitChannels). */
  gray?: boolean;
  onProgress?: (p: GenerateProgress) => void;
}

export interface GenerateProgress {
  segment: number;
  segments: number;
  done: number;
  total: number;
  tokensPerSecond: number;
}

export interface GenerateResult {
  /** Decoded video, all samples: N×C×T×H×W in [-1, 1]. */
  frames: ClipTensor;
  /** Per sample, the token clips generated (the first clip, then each extension's whole clip). */
  tokens: VisualTokens[][];
  /** Per sample, the whole sequence of the first clip (prefix + output). */
  sequences: Int32Array[];
  /** Frames of each extension clip that repeat the end of the clip before it (dropped from `frames`). */
  overlapFrames: number;
  /** The sampling settings used where the model directory supplied defaults (kept in the token file). */
  settings?: Record<string, unknown>;
}

/** One prompt of a batch: a task's sequence (its prefix is what is given) and output plan, and its text embeddings. */
export interface ClipPrompt {
  sequence: LmSequence;
  plan: OutputStep[];
  text?: TextInput;
}

/** How a batch of clips is sampled, decoded and tokenized. */
export interface ClipBatchOptions extends SamplingOptions {
  seed: number;
  /** Classifier-free guidance scale (default 1 = none; the prompts need text). */
  cfg?: number;
  /** Samples per prompt (default 1). */
  samples?: number;
  /**
   * Sampler rows per call (prompts × samples, at least one prompt; default: all in one call). Each call is seeded
   * with `seed` + the index of its first prompt, so a prompt draws the same whatever the batch around it.
   */
  rows?: number;
  /** Clips per tokenizer call (default 1). */
  tokenizerBatch?: number;
  /** A decoder to reuse (its compiled programs); default: one for this call, released at the end. */
  decoder?: PrefixLmDecoder;
  onProgress?: (p: SampleProgress) => void;
}

/** Clips sampled, one per row (prompt-major, then sample). */
export interface SampledClips {
  /** Decoded: N×C×T×H×W in [-1, 1]. */
  frames: ClipTensor;
  tokens: VisualTokens[];
  /** Each row's whole sequence (prefix + output). */
  sequences: Int32Array[];
}

/** Latent frames per video frame of the tokenizer (1 for a tokenizer that keeps every frame). */
export function temporalStride(gen: Generator): number {
  const s = outputSize(gen.layout);
  const t = s.grid.length === 3 ? s.grid[0]! : 1;
  return t > 1 ? (s.frames - 1) / (t - 1) : 1;
}

/** Clips (N×C×T×H×W) as token clips, `batch` clips per tokenizer call (default 1). */
export function tokenizeClips(gen: Generator, clips: ClipTensor, batch = 1): VisualTokens[] {
  const t = encodeClips(gen.tokenizer, clips, Math.min(batch, clips.shape[0]));
  const per = gridSize(t.grid);
  return Array.from({ length: t.n }, (_, i) => ({ ids: t.ids.subarray(i * per, (i + 1) * per), grid: t.grid }));
}

/** Token clips of one grid decoded, `batch` clips per tokenizer call (the last call padded): N×C×T×H×W. */
function decodeClips(gen: Generator, clips: VisualTokens[], batch: number): ClipTensor {
  const grid = clips[0]!.grid,
    per = gridSize(grid);
  const ids = new Int32Array(clips.length * per);
  clips.forEach((c, r) => {
    ids.set(c.ids, r * per);
  });
  return decodeTokens(gen.tokenizer, { ids, n: clips.length, grid }, batch);
}

/** Samples `samples` clips per prompt (prompts of one layout and plan), parses and decodes them. */
export function* sampleClips(gen: Generator, prompts: ClipPrompt[], o: ClipBatchOptions): Steps<SampledClips> {
  const samples = o.samples ?? 1;
  check(prompts.length > 0, 'sampleClips: no prompts');
  check(Number.isInteger(samples) && samples >= 1, `samples must be a positive integer, got ${samples}`);
  const perCall = Math.max(1, Math.floor((o.rows ?? prompts.length * samples) / samples));
  const decoder = o.decoder ?? new PrefixLmDecoder(gen.model.lm);
  try {
    const tokens: VisualTokens[] = [],
      sequences: Int32Array[] = [],
      parts: ClipTensor[] = [];
    for (let s = 0; s < prompts.length; s += perCall) {
      const chunk = prompts.slice(s, s + perCall);
      const texts = chunk.flatMap((q) => (q.text ? [q.text] : []));
      const ids = yield* sampleSteps(gen.model.lm, {
        prefix: chunk.map((q) => q.sequence),
        text: texts.length > 0 ? texts : undefined,
        plan: chunk[0]!.plan,
        samples,
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        cfgScale: o.cfg,
        seed: o.seed + s,
        decoder,
        onProgress: o.onProgress,
      });
      const L = ids.length / (chunk.length * samples),
        clips: VisualTokens[] = [];
      for (let r = 0; r < chunk.length * samples; r++) {
        const q = chunk[Math.floor(r / samples)]!.sequence,
          prefix = q.ids.subarray(0, q.prefixLength);
        const out = ids.subarray(r * L, (r + 1) * L);
        clips.push(parseOutput(gen.layout, prefix, out).clip);
        const full = new Int32Array(q.prefixLength + L);
        full.set(prefix);
        full.set(out, q.prefixLength);
        sequences.push(full);
      }
      tokens.push(...clips);
      parts.push(decodeClips(gen, clips, o.tokenizerBatch ?? 1));
    }
    return { frames: joinClips(parts, 'clips'), tokens, sequences };
  } finally {
    if (!o.decoder) decoder.dispose();
  }
}

/**
 * Each clip one extension longer (VideoPoet §9): its last `condFrames` latent frames' worth of frames are tokenized
 * again as the start of a clip (a causal tokenizer encodes its first frame alone) and continued by frame
 * prediction; the new clip, less the frames it repeats, is joined on. Returns the longer clips and the new ones.
 */
export function* extendClips(
  gen: Generator,
  video: ClipTensor,
  o: Omit<ClipBatchOptions, 'cfg' | 'samples'> & { condFrames: number },
): Steps<{ video: ClipTensor; added: SampledClips }> {
  const T = video.shape[2],
    given = framesForLatent(o.condFrames, temporalStride(gen));
  check(T >= given, `an extension of ${o.condFrames} latent frame(s) needs ${given} frames, the clips have ${T}`);
  const tails = tokenizeClips(gen, frameRange(video, T - given, T), o.tokenizerBatch);
  const prompts = tails.map((v) => extensionPrompt(gen.layout, v, { condFrames: o.condFrames }));
  const added = yield* sampleClips(gen, prompts, { ...o, cfg: 1, samples: 1 });
  return { video: joinClips([video, frameRange(added.frames, given, added.frames.shape[2])], 'time'), added };
}

/** An image or video input as one token clip: the frames at the model's size, by the channel rule of io/clip. */
function tokenizeInput(gen: Generator, frames: Frame[], gray: boolean | undefined, what: string): VisualTokens {
  check(frames.length > 0, `${what} has no frames`);
  const { height: H, width: W } = outputSize(gen.layout);
  for (const f of frames) {
    if (f.width !== W || f.height !== H) {
      throw new VtokError(`${what} is ${f.width}×${f.height}; the model generates ${W}×${H} (resize it first)`);
    }
  }
  return tokenizeClips(gen, framesToClip(frames, gen.tokenizer.channels ?? 3, gray, what))[0]!;
}

export function generate(gen: Generator, o: GenerateOptions): GenerateResult {
  return runSteps(generateSteps(gen, o));
}

/**
 * `generate` that gives the event loop a turn about every 100 ms and asks `stop` (e.g. an Interrupt's poll) whether
 * to go on; stopped, the decoder is released and nothing is returned.
 */
export function generateAsync(
  gen: Generator,
  o: GenerateOptions,
  stop: () => Promise<boolean>,
): Promise<StepsOutcome<GenerateResult>> {
  return runStepsAsync(generateSteps(gen, o), stop);
}

/** The work of `generate` as steps: yields after every sampled position (see util/steps). */
export function* generateSteps(gen: Generator, o: GenerateOptions): Steps<GenerateResult> {
  const task = resolveTaskName(o.task);
  const spec = getTask(task);
  const given = { prompt: o.prompt, image: o.image, video: o.video, label: o.label };
  checkSamplingInputs(o.task, { ...given, condFrames: o.condFrames, seconds: o.seconds });
  const { layout, model } = gen;
  const size = outputSize(layout);
  const samples = o.samples ?? 1,
    cfg = o.cfg ?? 1,
    seed = o.seed ?? 0;
  check(Number.isInteger(samples) && samples >= 1, `samples must be a positive integer, got ${samples}`);
  const condFrames = o.condFrames ?? 1;
  check(condFrames === 1 || condFrames === 2, `condFrames must be 1 or 2 latent frames, got ${condFrames}`);
  const inputs: TaskInputs = { label: o.label, condFrames };
  let text: TextInput | undefined;
  if (o.prompt !== undefined) {
    check(o.prompt.trim().length > 0, 'the prompt is empty');
    inputs.textTokens = model.tokenize([o.prompt]);
    text = model.embed(inputs.textTokens)[0];
  }
  if (cfg !== 1) check(text !== undefined, `classifier-free guidance (cfg ${cfg}) needs a text prompt`);
  const overlap = framesForLatent(condFrames, temporalStride(gen));
  if (o.image) inputs.image = tokenizeInput(gen, [o.image], o.gray, 'the image');
  if (o.video) {
    check(o.video.length >= overlap, `the video is too short to continue: ${o.video.length} frame(s), need ${overlap}`);
    inputs.video = tokenizeInput(gen, o.video.slice(o.video.length - overlap), o.gray, 'the video');
  }
  // the first clip: sampled for the task's own prefix
  const prompt: ClipPrompt = {
    sequence: buildSequence(layout, task, inputs),
    plan: outputPlan(layout, task, inputs),
    text,
  };
  const fullClipFrames = size.frames;
  const seconds = o.seconds ?? fullClipFrames / gen.fps;
  check(Number.isFinite(seconds) && seconds > 0, `seconds must be a positive number, got ${seconds}`);
  const wanted = Math.max(spec.still ? 1 : fullClipFrames, Math.round(seconds * gen.fps));
  const extensions = spec.still ? 0 : Math.ceil(Math.max(0, wanted - fullClipFrames) / (fullClipFrames - overlap));
  const segments = 1 + extensions;
  const decoder = new PrefixLmDecoder(model.lm, { precision: o.precision });
  try {
    const progress = (segment: number) => (p: SampleProgress) => o.onProgress?.({ segment, segments, ...p });
    const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, decoder };
    const first = yield* sampleClips(gen, [prompt], { ...sampling, samples, cfg, seed, onProgress: progress(0) });
    const tokens = first.tokens.map((t) => [t]);
    let video = first.frames;
    for (let e = 1; e <= extensions; e++) {
      const next = yield* extendClips(gen, video, { ...sampling, condFrames, seed: seed + e, onProgress: progress(e) });
      next.added.tokens.forEach((t, r) => {
        tokens[r]!.push(t);
      });
      video = next.video;
    }
    const frames = frameRange(video, 0, spec.still ? 1 : wanted);
    return { frames, tokens, sequences: first.sequences, overlapFrames: overlap };
  } finally {
    decoder.dispose();
  }
}
