import type { Generator } from '../../generation/model-dir.js';
import { sample, type TextInput } from '../../generation/sampler.js';
import type { LmSequence, OutputStep, VisualTokens } from '../../generation/sequence.js';
import { buildSequence, extensionPrompt, framesForLatent, outputPlan, parseOutput, type TaskInputs } from '../../generation/tasks.js';
import type { TextTokens } from '../../generation/text/encoder.js';
import { outputSize } from '../../generation/vocab.js';
import type { ClipTensor } from '../../io/frame.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { check } from '../../util/errors.js';

/** Sampling settings shared by every call of a study. */
export interface Sampling {
  temperature: number;
  topK?: number;
  topP?: number;
  /** Prompts per sampler call (rows; doubled under guidance). */
  batch: number;
}

/**
 * What the study needs from a text-to-video model: clips in [-1, 1] (N×C×T×H×W) from captions, from nothing, from
 * the first latent frame(s) of a clip, and one more step of a long video. Every call is seeded and reproducible.
 */
export interface StudyGenerator {
  /** One generated clip, C×T×H×W. */
  readonly clip: { channels: 1 | 3; frames: number; height: number; width: number };
  /** Frames of a clip that `condFrames` latent frames cover (the causal tokenizer's first frame is alone). */
  givenFrames(condFrames: number): number;
  textToVideo(prompts: string[], o: { cfg: number; seed: number }): ClipTensor;
  unconditional(count: number, o: { seed: number }): ClipTensor;
  /** Whole clips: the tokenizer's version of the given frames, then the predicted ones. */
  predictFrames(video: ClipTensor, o: { condFrames: number; seed: number }): ClipTensor;
  /** The videos one extension longer: the last latent frame(s) re-tokenized and continued (VideoPoet §9). */
  extend(video: ClipTensor, o: { condFrames: number; seed: number }): ClipTensor;
  /** The tokenizer's round trip of real clips (the ceiling of any generated frame). */
  reconstruct(clips: ClipTensor): ClipTensor;
}

const clipSize = (shape: readonly number[]) => shape.slice(1).reduce((a, b) => a * b, 1);

/** Clips i … j−1 of a clip tensor (a view). */
export function clipRange(c: ClipTensor, i: number, j: number): ClipTensor {
  const per = clipSize(c.shape);
  const [, C, T, H, W] = c.shape;
  return { data: c.data.subarray(i * per, j * per), shape: [j - i, C, T, H, W] };
}

/** Frames t0 … t1−1 of every clip. */
export function frameRange(c: ClipTensor, t0: number, t1: number): ClipTensor {
  const [N, C, T, H, W] = c.shape as [number, number, number, number, number];
  check(0 <= t0 && t0 < t1 && t1 <= T, `frames ${t0}…${t1 - 1} are outside a ${T}-frame clip`);
  const plane = H * W, out = new Float32Array(N * C * (t1 - t0) * plane);
  for (let k = 0; k < N * C; k++) out.set(c.data.subarray((k * T + t0) * plane, (k * T + t1) * plane), k * (t1 - t0) * plane);
  return { data: out, shape: [N, C, t1 - t0, H, W] };
}
/** Clips of the same size and frame count, or of the same count and size joined along time (`axis` 'time'). */
export function joinClips(parts: ClipTensor[], axis: 'clips' | 'time'): ClipTensor {
  if (axis === 'clips') {
    const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    let off = 0;
    for (const p of parts) (data.set(p.data, off), (off += p.data.length));
    const [, C, T, H, W] = parts[0]!.shape;
    return { data, shape: [parts.reduce((n, p) => n + p.shape[0], 0), C, T, H, W] };
  }
  const [N, C, , H, W] = parts[0]!.shape as [number, number, number, number, number];
  const T = parts.reduce((n, p) => n + p.shape[2]!, 0), plane = H * W, out = new Float32Array(N * C * T * plane);
  for (let k = 0; k < N * C; k++) {
    let t = 0;
    for (const p of parts) {
      const Tp = p.shape[2]!;
      out.set(p.data.subarray(k * Tp * plane, (k + 1) * Tp * plane), (k * T + t) * plane);
      t += Tp;
    }
  }
  return { data: out, shape: [N, C, T, H, W] };
}

/**
 * A StudyGenerator over a loaded model directory: the same steps as `generate` (task registry → KV-cached sampler →
 * parsed clip → tokenizer decode; extensions re-tokenize the last latent frame's frames), but many prompts per
 * sampler call, which a study of hundreds of clips needs. One prompt with the same seed draws exactly what
 * `generate` draws.
 */
export function studyGenerator(gen: Generator, sampling: Sampling): StudyGenerator {
  const { model, layout, tokenizer: tok } = gen;
  const size = outputSize(layout);
  const channels = (tok.channels ?? 3) as 1 | 3;
  const { frames, height, width } = size;
  const t = size.grid.length === 3 ? size.grid[0]! : 1;
  const stride = t > 1 ? (frames - 1) / (t - 1) : 1;
  const rows = Math.max(1, sampling.batch);

  /** Samples the prompts in batches of `rows` and decodes each parsed clip. */
  function run(prompts: { sequence: LmSequence; plan: OutputStep[] }[], texts: TextInput[] | undefined, o: { cfg: number; seed: number }): ClipTensor {
    const parts: ClipTensor[] = [];
    for (let s = 0; s < prompts.length; s += rows) {
      const chunk = prompts.slice(s, s + rows);
      const ids = sample(model.lm, {
        prefix: chunk.map((q) => q.sequence), text: texts?.slice(s, s + rows), plan: chunk[0]!.plan, cfgScale: o.cfg, seed: o.seed + s,
        temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP,
      });
      const L = ids.length / chunk.length;
      const clips = chunk.map((q, r) => parseOutput(layout, q.sequence.ids.subarray(0, q.sequence.prefixLength), ids.subarray(r * L, (r + 1) * L)).clip);
      const grid = clips[0]!.grid, per = grid.reduce((a, b) => a * b, 1);
      const all = new Int32Array(clips.length * per);
      clips.forEach((c, r) => all.set(c.ids, r * per));
      parts.push(decodeTokens(tok, { ids: all, n: clips.length, grid }, rows));
    }
    return joinClips(parts, 'clips');
  }
  const prompt = (task: string, x: TaskInputs) => ({ sequence: buildSequence(layout, task, x), plan: outputPlan(layout, task, x) });
  const encode = (clips: ClipTensor): VisualTokens[] => {
    const e = encodeClips(tok, clips, Math.min(rows, clips.shape[0]));
    const per = e.grid.reduce((a, b) => a * b, 1);
    return Array.from({ length: e.n }, (_, i) => ({ ids: e.ids.subarray(i * per, (i + 1) * per), grid: e.grid }));
  };

  return {
    clip: { channels, frames, height, width },
    givenFrames: (k) => framesForLatent(k, stride),
    textToVideo(prompts, o) {
      const tt = model.tokenize(prompts), Lt = tt.maxTokens;
      const one = (i: number): TextTokens => ({ ids: tt.ids.subarray(i * Lt, (i + 1) * Lt), lengths: tt.lengths.subarray(i, i + 1), count: 1, maxTokens: Lt });
      return run(prompts.map((_, i) => prompt('t2v', { textTokens: one(i) })), model.embed(tt), o);
    },
    unconditional(count, o) {
      return run(Array.from({ length: count }, () => prompt('uncond', {})), undefined, { cfg: 1, seed: o.seed });
    },
    predictFrames(video, o) {
      return run(encode(video).map((v) => prompt('fp', { video: v, condFrames: o.condFrames })), undefined, { cfg: 1, seed: o.seed });
    },
    extend(video, o) {
      const T = video.shape[2], g = framesForLatent(o.condFrames, stride);
      // the tail is tokenized again as the start of a clip (the causal tokenizer encodes its first frame alone)
      const next = run(encode(frameRange(video, T - g, T)).map((v) => extensionPrompt(layout, v, { condFrames: o.condFrames })), undefined, { cfg: 1, seed: o.seed });
      return joinClips([video, frameRange(next, g, next.shape[2])], 'time');
    },
    reconstruct(clips) {
      const n = Math.min(rows, clips.shape[0]);
      return decodeTokens(tok, encodeClips(tok, clips, n), n);
    },
  };
}
