import { frameRange, framesToClip, joinClips } from '../io/clip.js';
import type { ClipTensor, Frame } from '../io/frame.js';
import { decodeTokens, encodeClips } from '../tokenizers/batch.js';
import { VtokError, check } from '../util/errors.js';
import type { SamplingOptions } from '../util/sampling.js';
import { runSteps, runStepsAsync, type Steps, type StepsOutcome } from '../util/steps.js';
import { PrefixLmDecoder } from './prefix-lm/decoder.js';
import { hiddenText, sampleSteps, type SampleProgress, type TextInput } from './sampler.js';
import { gridSize, hideLabel, type LmSequence, type OutputStep, type VisualTokens } from './sequence.js';
import {
  buildSequence,
  checkSamplingInputs,
  extensionCondFrames,
  extensionPrompt,
  framesForLatent,
  getTask,
  outputPlan,
  parseOutput,
  resolveTaskName,
  type TaskInputs,
} from './tasks.js';
import type { Generator } from './model-dir.js';
import type { TextTokens } from './text/encoder.js';
import { hasTextSlot, outputSize, trainedCondFrames } from './vocab.js';

/**
 * Generation with a loaded model directory: prompt → tokens → prefix → sampled output → tokenizer decode. Image and
 * video inputs are tokenized with the model's own tokenizer. Longer videos than one clip (`seconds`) grow by
 * VideoPoet's extension (§9): the last second's latent frames' worth of frames (`condFrames`, by default as many as
 * the model was trained to condition on, up to a second) is tokenized again and continued by frame prediction, as
 * often as needed, keeping the prompt (and its guidance) where the model's frame prediction takes text. The
 * batch-level steps, `sampleClips` (a batch of samples of one task) and `extendClips`, are what `generate` and the
 * studies both run.
 */
export interface GenerateOptions extends SamplingOptions {
  /** t2v | t2i | i2v | fp (alias continue) | uncond | class. */
  task: string;
  prompt?: string;
  /** i2v: the first frame. */
  image?: Frame;
  /** fp: the video to continue (its last frames condition the output). */
  video?: Frame[];
  /** class: the label, by number or by name (the model keeps its labels' names). */
  label?: number | string;
  /**
   * fp and extensions: latent frames that condition each clip, one of those the model was trained with (default: the
   * last second's, as far as it was trained: `extensionCondFrames`). More carries more of the motion over; each
   * extension then adds fewer new frames.
   */
  condFrames?: number;
  /** Length of the video; beyond one clip, extensions are added (default: one clip). */
  seconds?: number;
  /** Classifier-free guidance scale (default 1 = none; needs a text prompt or a class label). */
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
  /** Guidance's unconditional prompt where it is not the text hidden (a class label's: `hideLabel`). */
  uncond?: LmSequence;
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

/**
 * Frames of a video to continue that `generate` uses: its last ones, as many as `condFrames` latent frames cover
 * (default: the last second's, as far as the model was trained). A caller reading a long video reads only these.
 */
export function videoFramesNeeded(gen: Generator, condFrames?: number): number {
  const stride = temporalStride(gen);
  return framesForLatent(condFrames ?? extensionCondFrames(gen.layout, stride, gen.fps), stride);
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
      // a slot without a prompt is hidden: the layout condition dropout trains
      const hidden = (n: number) => hiddenText(n, gen.model.lm.cfg.textDim ?? 0);
      const texts = chunk.flatMap((q) => (q.text ? [q.text] : q.sequence.text ? [hidden(q.sequence.text.length)] : []));
      const unconds = chunk.flatMap((q) => (q.uncond ? [q.uncond] : []));
      const ids = yield* sampleSteps(gen.model.lm, {
        prefix: chunk.map((q) => q.sequence),
        text: texts.length > 0 ? texts : undefined,
        uncond: unconds.length > 0 ? unconds : undefined,
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

/** A clip's prompt for its extensions: its text tokens and embeddings. */
export interface ExtensionText {
  tokens: TextTokens;
  input: TextInput;
}

/**
 * Each clip one extension longer (VideoPoet §9): its last `condFrames` latent frames' worth of frames are tokenized
 * again as the start of a clip (a causal tokenizer encodes its first frame alone) and continued by frame
 * prediction; the new clip, less the frames it repeats, is joined on. Returns the longer clips and the new ones.
 * `text` (one per clip) keeps each clip's prompt, and `cfg` its guidance, where the model's frame prediction takes
 * text; without it a model whose frame prediction has a text slot gets it hidden.
 */
export function* extendClips(
  gen: Generator,
  video: ClipTensor,
  o: Omit<ClipBatchOptions, 'samples'> & { condFrames: number; text?: ExtensionText[] },
): Steps<{ video: ClipTensor; added: SampledClips }> {
  const T = video.shape[2],
    given = framesForLatent(o.condFrames, temporalStride(gen));
  check(T >= given, `an extension of ${o.condFrames} latent frame(s) needs ${given} frames, the clips have ${T}`);
  const text = hasTextSlot(gen.layout, 'fp') ? o.text : undefined;
  if (text) check(text.length === video.shape[0], `extendClips: ${text.length} prompts for ${video.shape[0]} clips`);
  const cfg = text ? (o.cfg ?? 1) : 1;
  const tails = tokenizeClips(gen, frameRange(video, T - given, T), o.tokenizerBatch);
  const prompts: ClipPrompt[] = tails.map((v, r) => ({
    ...extensionPrompt(gen.layout, v, { condFrames: o.condFrames, textTokens: text?.[r]?.tokens }),
    text: text?.[r]?.input,
  }));
  const added = yield* sampleClips(gen, prompts, { ...o, cfg, samples: 1 });
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
  const stride = temporalStride(gen);
  const condFrames = o.condFrames ?? extensionCondFrames(layout, stride, gen.fps);
  const trained = trainedCondFrames(layout);
  check(
    trained.includes(condFrames),
    `condFrames ${condFrames}: this model was trained to condition on ${trained.join(' or ')} latent frame(s)`,
  );
  // a video to continue shorter than the default's frames is continued from what it has (named: as asked)
  const fitting = trained.filter((k) => k <= condFrames && framesForLatent(k, stride) <= (o.video?.length ?? 0));
  const videoFrames = o.condFrames ?? (fitting.length ? Math.max(...fitting) : condFrames);
  const inputs: TaskInputs = { label: o.label, condFrames: videoFrames };
  let text: TextInput | undefined;
  if (o.prompt !== undefined) {
    check(o.prompt.trim().length > 0, 'the prompt is empty');
    inputs.textTokens = model.tokenize([o.prompt]);
    text = model.embed(inputs.textTokens)[0];
  }
  // every sample's extensions keep the prompt (where the model's frame prediction takes text)
  const extensionText = text && Array.from({ length: samples }, () => ({ tokens: inputs.textTokens!, input: text! }));
  const labelled = spec.given === 'label';
  if (cfg !== 1)
    check(text !== undefined || labelled, `classifier-free guidance (cfg ${cfg}) needs a text prompt or a class label`);
  const overlap = framesForLatent(condFrames, stride);
  if (o.image) inputs.image = tokenizeInput(gen, [o.image], o.gray, 'the image');
  if (o.video) {
    const need = framesForLatent(videoFrames, stride);
    check(o.video.length >= need, `the video is too short to continue: ${o.video.length} frame(s), need ${need}`);
    inputs.video = tokenizeInput(gen, o.video.slice(o.video.length - need), o.gray, 'the video');
  }
  // the first clip: sampled for the task's own prefix
  const sequence = buildSequence(layout, task, inputs);
  const prompt: ClipPrompt = {
    sequence,
    plan: outputPlan(layout, task, inputs),
    text,
    ...(labelled && cfg !== 1 ? { uncond: hideLabel(layout, sequence) } : {}),
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
      const next = yield* extendClips(gen, video, {
        ...sampling,
        condFrames,
        text: extensionText,
        cfg,
        seed: seed + e,
        onProgress: progress(e),
      });
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
