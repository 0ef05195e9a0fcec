import type { Tensor } from '../../engine/index.js';
import type { PrefixLm } from '../../generation/prefix-lm/model.js';
import { sample, type TextInput } from '../../generation/sampler.js';
import { latentFrames, type VisualTokens } from '../../generation/sequence.js';
import { buildSequence, framesForLatent, outputPlan, parseOutput, type TaskInputs } from '../../generation/tasks.js';
import type { BuiltinTextEncoder } from '../../generation/text/builtin.js';
import type { FrozenTextEncoder, TextTokens } from '../../generation/text/encoder.js';
import type { VocabLayout } from '../../generation/vocab.js';
import type { ClipTensor } from '../../io/frame.js';
import { compileInference } from '../../nn/compiled.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
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

export interface GeneratorParts {
  lm: PrefixLm;
  layout: VocabLayout;
  tokenizer: Tokenizer;
  text: BuiltinTextEncoder | FrozenTextEncoder;
  sampling: Sampling;
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
 * A StudyGenerator over a model's parts (prefix LM, vocabulary layout, tokenizer, text encoder): the task
 * registry builds each prompt, the KV-cached sampler draws the output, the tokenizer decodes the parsed clip.
 */
export function partsGenerator(p: GeneratorParts): StudyGenerator {
  const { lm, layout, tokenizer: tok, sampling } = p;
  const channels = (tok.channels ?? 3) as 1 | 3;
  const size = layout.outputs[0]!;
  const [height, width] = [size.height, size.width];
  const frames = size.frames;
  const grid = tok.grid([channels, frames, height, width]).shape;
  const stride = grid.length === 3 && grid[0]! > 1 ? (frames - 1) / (grid[0]! - 1) : frames;
  const embed = textEmbedder(p.text);
  const rows = Math.max(1, sampling.batch);

  /** Samples `prefixes` (same layout) in batches and decodes each parsed clip. */
  function run(task: string, inputs: TaskInputs[], texts: TextInput[] | undefined, o: { cfg: number; seed: number }): { clips: ClipTensor; tokens: VisualTokens[] } {
    const parts: ClipTensor[] = [];
    const tokens: VisualTokens[] = [];
    for (let s = 0; s < inputs.length; s += rows) {
      const chunk = inputs.slice(s, s + rows);
      const prefixes = chunk.map((x) => buildSequence(layout, task, x));
      const plan = outputPlan(layout, task, chunk[0]!);
      const ids = sample(lm, {
        prefix: prefixes, text: texts?.slice(s, s + rows), plan, cfgScale: o.cfg, seed: o.seed + s,
        temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP,
      });
      const L = ids.length / chunk.length;
      const clips = prefixes.map((q, r) => parseOutput(layout, q.ids.subarray(0, q.prefixLength), ids.subarray(r * L, (r + 1) * L)).clip);
      tokens.push(...clips);
      const cg = clips[0]!.grid, per = cg.reduce((a, b) => a * b, 1);
      const all = new Int32Array(clips.length * per);
      clips.forEach((c, r) => all.set(c.ids, r * per));
      parts.push(decodeTokens(tok, { ids: all, n: clips.length, grid: cg }));
    }
    return { clips: joinClips(parts, 'clips'), tokens };
  }

  const encode = (clips: ClipTensor): VisualTokens[] => {
    const t = encodeClips(tok, clips, Math.min(rows, clips.shape[0]!));
    const per = t.grid.reduce((a, b) => a * b, 1);
    return Array.from({ length: t.n }, (_, i) => ({ ids: t.ids.subarray(i * per, (i + 1) * per), grid: t.grid }));
  };

  return {
    clip: { channels, frames, height, width },
    givenFrames: (k) => framesForLatent(k, stride),
    textToVideo(prompts, o) {
      const tt = p.text.tokenize(prompts);
      const emb = embed(tt);
      const Lt = tt.maxTokens, dim = p.text.dim;
      const texts = prompts.map((_, i) => ({
        embeddings: emb.subarray(i * Lt * dim, (i + 1) * Lt * dim),
        valid: Uint8Array.from({ length: Lt }, (_, j) => (j < tt.lengths[i]! ? 1 : 0)),
      }));
      const one = (i: number): TextTokens => ({ ids: tt.ids.subarray(i * Lt, (i + 1) * Lt), lengths: tt.lengths.subarray(i, i + 1), count: 1, maxTokens: Lt });
      return run('t2v', prompts.map((_, i) => ({ textTokens: one(i) })), texts, o).clips;
    },
    unconditional(count, o) {
      return run('uncond', Array.from({ length: count }, () => ({})), undefined, { cfg: 1, seed: o.seed }).clips;
    },
    predictFrames(video, o) {
      return run('fp', encode(video).map((v) => ({ video: v, condFrames: o.condFrames })), undefined, { cfg: 1, seed: o.seed }).clips;
    },
    extend(video, o) {
      const T = video.shape[2]!, g = framesForLatent(o.condFrames, stride);
      // the tail is re-tokenized as the start of a clip: its first frame is encoded alone, as the causal tokenizer does
      const tail = frameRange(video, T - g, T);
      const tailTokens = encode(tail).map((v) => latentFrames(v, v.grid[0]! - o.condFrames, v.grid[0]!));
      const next = run('fp', tailTokens.map((v) => ({ video: v, condFrames: o.condFrames })), undefined, { cfg: 1, seed: o.seed }).clips;
      return joinClips([video, frameRange(next, g, next.shape[2]!)], 'time');
    },
    reconstruct(clips) {
      const t = encodeClips(tok, clips, Math.min(rows, clips.shape[0]!));
      return decodeTokens(tok, t, Math.min(rows, clips.shape[0]!));
    },
  };
}

/** Prompt embeddings [count, maxTokens, dim] from either kind of text encoder. */
function textEmbedder(text: BuiltinTextEncoder | FrozenTextEncoder): (t: TextTokens) => Float32Array {
  if ('embed' in text) return (t) => text.embed(t);
  const fn = compileInference(text, (ids: Tensor, valid: Tensor) => text.forward(ids, valid), 'study_text_encoder');
  return (t) => {
    const x = text.inputs(t);
    return Float32Array.from((fn(x.ids, x.valid) as Tensor).data as Float32Array);
  };
}

