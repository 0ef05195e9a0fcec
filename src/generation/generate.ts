import type { ClipTensor, Frame } from '../io/frame.js';
import { decodeTokens, encodeClips } from '../tokenizers/batch.js';
import { VtokError, check } from '../util/errors.js';
import { PrefixLmDecoder } from './prefix-lm/decoder.js';
import { sampleSteps, type PrefixSequence, type TextInput } from './sampler.js';
import { runSteps, runStepsAsync, type Steps, type StepsOutcome } from '../util/steps.js';
import type { VisualTokens } from './sequence.js';
import { buildSequence, extensionPrompt, framesForLatent, getTask, outputPlan, parseOutput, type TaskInputs } from './tasks.js';
import type { Generator } from './model-dir.js';
import { outputSize } from './vocab.js';

/**
 * Generation with a loaded model directory: prompt → tokens → prefix → sampled output → tokenizer decode. Image and
 * video inputs are tokenized with the model's own tokenizer. Longer videos than one clip (`seconds`) grow by
 * VideoPoet's extension (§9): the last latent frames' worth of frames (`condFrames`, 1 or 2) is decoded, tokenized
 * again and continued by frame prediction, as often as needed.
 */
export interface GenerateOptions {
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
  temperature?: number;
  topK?: number;
  topP?: number;
  samples?: number;
  seed?: number;
  /** Decode steps with int8 weights (the blocks' linears and the head; see PrefixLmDecoder). Default fp32. */
  precision?: 'fp32' | 'int8';
  onProgress?: (p: GenerateProgress) => void;
}

export interface GenerateProgress { segment: number; segments: number; done: number; total: number; tokensPerSecond: number }

export interface GenerateResult {
  /** Decoded video, all samples: N×C×T×H×W in [-1, 1]. */
  frames: ClipTensor;
  /** Per sample, the token clips generated (the first clip, then each extension's whole clip). */
  tokens: VisualTokens[][];
  /** Per sample, the whole sequence of the first clip (prefix + output). */
  sequences: Int32Array[];
  /** Frames of each extension clip that repeat the end of the clip before it (dropped from `frames`). */
  overlapFrames: number;
}

/** Frames (8-bit RGB) as the tokenizer's input: 1×C×T×H×W in [-1, 1], gray as the mean of R, G and B. */
export function framesToClip(frames: Frame[], channels: number, size: { height: number; width: number }, what: string): ClipTensor {
  check(frames.length > 0, `${what} has no frames`);
  const { height: H, width: W } = size, T = frames.length;
  const out = new Float32Array(channels * T * H * W);
  frames.forEach((f, t) => {
    if (f.width !== W || f.height !== H) throw new VtokError(`${what} is ${f.width}×${f.height}; the model generates ${W}×${H} (resize it first)`);
    for (let p = 0; p < H * W; p++) {
      const r = f.data[3 * p]!, g = f.data[3 * p + 1]!, b = f.data[3 * p + 2]!;
      if (channels === 1) out[t * H * W + p] = (r + g + b) / 3 / 127.5 - 1;
      else [r, g, b].forEach((v, c) => (out[(c * T + t) * H * W + p] = v / 127.5 - 1));
    }
  });
  return { data: out, shape: [1, channels, T, H, W] };
}

/** Latent frames per video frame of the tokenizer (1 for a tokenizer that keeps every frame). */
function temporalStride(gen: Generator): number {
  const s = outputSize(gen.layout);
  const t = s.grid.length === 3 ? s.grid[0]! : 1;
  return t > 1 ? (s.frames - 1) / (t - 1) : 1;
}

function tokenize(gen: Generator, frames: Frame[], what: string): VisualTokens {
  const s = outputSize(gen.layout);
  const clip = framesToClip(frames, gen.tokenizer.channels ?? 3, s, what);
  const t = encodeClips(gen.tokenizer, clip);
  return { ids: t.ids, grid: t.grid };
}

export function generate(gen: Generator, o: GenerateOptions): GenerateResult {
  return runSteps(generateSteps(gen, o));
}

/**
 * `generate` that gives the event loop a turn about every 100 ms and asks `stop` (e.g. an Interrupt's poll) whether
 * to go on; stopped, the decoder is released and nothing is returned.
 */
export function generateAsync(gen: Generator, o: GenerateOptions, stop: () => Promise<boolean>): Promise<StepsOutcome<GenerateResult>> {
  return runStepsAsync(generateSteps(gen, o), stop);
}

/** The work of `generate` as steps: yields after every sampled position (see util/steps). */
export function* generateSteps(gen: Generator, o: GenerateOptions): Steps<GenerateResult> {
  const task = o.task === 'continue' ? 'fp' : o.task;
  const spec = getTask(task);
  const { layout, model } = gen;
  const size = outputSize(layout);
  const samples = o.samples ?? 1, cfg = o.cfg ?? 1, seed = o.seed ?? 0;
  check(Number.isInteger(samples) && samples >= 1, `samples must be a positive integer, got ${samples}`);
  const condFrames = o.condFrames ?? 1;
  check(condFrames === 1 || condFrames === 2, `condFrames must be 1 or 2 latent frames, got ${condFrames}`);
  const inputs: TaskInputs = { label: o.label, condFrames };
  let text: TextInput | undefined;
  if (o.prompt !== undefined) {
    if (spec.text === 'none') throw new VtokError(`task ${task} takes no text prompt`);
    check(o.prompt.trim().length > 0, 'the prompt is empty');
    inputs.textTokens = model.tokenize([o.prompt]);
    text = model.embed(inputs.textTokens)[0];
  }
  if (cfg !== 1) check(text !== undefined, `classifier-free guidance (cfg ${cfg}) needs a text prompt`);
  const stride = temporalStride(gen);
  if (o.image) {
    check(task === 'i2v', `an image conditions task i2v only, not ${task}`);
    inputs.image = tokenize(gen, [o.image], 'the image');
  }
  if (o.video) {
    check(task === 'fp', `a video conditions task continue (fp) only, not ${task}`);
    const need = framesForLatent(condFrames, stride);
    check(o.video.length >= need, `the video is too short to continue: ${o.video.length} frame(s), need ${need}`);
    inputs.video = tokenize(gen, o.video.slice(o.video.length - need), 'the video');
  }
  // the first clip: sampled for the task's own prefix
  const seq = buildSequence(layout, task, inputs);
  const plan = outputPlan(layout, task, inputs);
  const fullClipFrames = size.frames;
  const seconds = o.seconds ?? fullClipFrames / gen.fps;
  check(Number.isFinite(seconds) && seconds > 0, `seconds must be a positive number, got ${seconds}`);
  const overlap = framesForLatent(condFrames, stride);
  const clipFramesOut = task === 't2i' ? 1 : fullClipFrames;
  const wanted = Math.max(clipFramesOut, Math.round(seconds * gen.fps));
  if (task === 't2i') check(o.seconds === undefined, 't2i makes one image; --seconds does not apply');
  const extensions = task === 't2i' ? 0 : Math.ceil(Math.max(0, wanted - fullClipFrames) / (fullClipFrames - overlap));
  const segments = 1 + extensions;
  const decoder = new PrefixLmDecoder(model.lm, { precision: o.precision });
  try {
    const progress = (segment: number) => (p: { done: number; total: number; tokensPerSecond: number }) => o.onProgress?.({ segment, segments, ...p });
    const prefix: PrefixSequence = { ids: seq.ids, prefixLength: seq.prefixLength, text: seq.text };
    const out = yield* sampleSteps(model.lm, { prefix, text, plan, samples, temperature: o.temperature, topK: o.topK, topP: o.topP, seed, cfgScale: cfg, decoder, onProgress: progress(0) });
    const per = out.length / samples;
    const sequences: Int32Array[] = [];
    const tokens: VisualTokens[][] = [];
    for (let r = 0; r < samples; r++) {
      const gen_ = out.subarray(r * per, (r + 1) * per);
      const parsed = parseOutput(layout, seq.ids.subarray(0, seq.prefixLength), gen_);
      const full = new Int32Array(seq.prefixLength + per);
      full.set(seq.ids.subarray(0, seq.prefixLength));
      full.set(gen_, seq.prefixLength);
      sequences.push(full);
      tokens.push([parsed.clip]);
    }
    // decoded frames per sample, grown by each extension
    const videos: Float32Array[][] = tokens.map((t) => [decodeClip(gen, t[0]!)]);
    for (let e = 1; e <= extensions; e++) {
      const prompts = tokens.map((_, r) => {
        const last = videos[r]![videos[r]!.length - 1]!;
        return extensionPrompt(layout, retokenizeTail(gen, last, overlap), { condFrames });
      });
      const next = yield* sampleSteps(model.lm, { prefix: prompts.map((p) => p.sequence), plan: prompts[0]!.plan, samples: 1, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: seed + e, decoder, onProgress: progress(e) });
      const n = next.length / samples;
      prompts.forEach((p, r) => {
        const parsed = parseOutput(layout, p.sequence.ids.subarray(0, p.sequence.prefixLength), next.subarray(r * n, (r + 1) * n));
        tokens[r]!.push(parsed.clip);
        videos[r]!.push(decodeClip(gen, parsed.clip));
      });
    }
    return { frames: joinVideos(gen, videos, overlap, task === 't2i' ? 1 : wanted), tokens, sequences, overlapFrames: overlap };
  } finally {
    decoder.dispose();
  }
}

/** One token clip decoded: C×T×H×W floats. */
function decodeClip(gen: Generator, clip: VisualTokens): Float32Array {
  return decodeTokens(gen.tokenizer, { ids: clip.ids, n: 1, grid: clip.grid }).data;
}

const channelsOf = (gen: Generator) => gen.tokenizer.channels ?? 3;

/** The last `frames` frames of a decoded C×T×H×W clip, tokenized again (what the next extension conditions on). */
function retokenizeTail(gen: Generator, video: Float32Array, frames: number): VisualTokens {
  const s = outputSize(gen.layout), C = channelsOf(gen), plane = s.height * s.width;
  const T = video.length / (C * plane);
  const tail = new Float32Array(C * frames * plane);
  for (let c = 0; c < C; c++) tail.set(video.subarray((c * T + T - frames) * plane, (c * T + T) * plane), c * frames * plane);
  const t = encodeClips(gen.tokenizer, { data: tail, shape: [1, C, frames, s.height, s.width] });
  return { ids: t.ids, grid: t.grid };
}

/** Joins each sample's clips along time (dropping each extension's first `overlap` frames), cut to `frames`. */
function joinVideos(gen: Generator, videos: Float32Array[][], overlap: number, frames: number): ClipTensor {
  const s = outputSize(gen.layout), C = channelsOf(gen), plane = s.height * s.width;
  const out = new Float32Array(videos.length * C * frames * plane);
  videos.forEach((clips, r) => {
    let t0 = 0;
    clips.forEach((v, k) => {
      const T = v.length / (C * plane), from = k === 0 ? 0 : overlap;
      for (let t = from; t < T && t0 < frames; t++, t0++) {
        for (let c = 0; c < C; c++) out.set(v.subarray((c * T + t) * plane, (c * T + t + 1) * plane), ((r * C + c) * frames + t0) * plane);
      }
    });
  });
  return { data: out, shape: [videos.length, C, frames, s.height, s.width] };
}

