import { framesToClip } from '../../io/clip.js';
import type { Frame } from '../../io/frame.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { VtokError, check } from '../../util/errors.js';
import type { SamplingOptions } from '../../util/sampling.js';
import type { Steps } from '../../util/steps.js';
import type { GenerateProgress, GenerateResult } from '../generate.js';
import type { VisualTokens } from '../sequence.js';
import { LarpArDecoder } from './decoder.js';
import type { LarpArGenerator } from './model-dir.js';
import { sampleLarpArSteps } from './sample.js';

/**
 * `vtok generate` with a LARP AR model directory, as the reference's sample.py does it:
 * - task `class`: a class (a name of the directory's class_names, e.g. UCF-101's "PlayingGuitar", or an index),
 *   guided by the directory's sampling settings (the reference's cfg 1.25 for UCF-101) unless given;
 * - task `continue` (alias `fp`) with a frame-prediction model: the video's last `condFrames` frames (the
 *   reference's 5), padded to a clip by repeating the last one, are tokenized, the separator appended, and a whole
 *   clip drawn and decoded (its first frames re-generate the condition, which the reference does not paste back).
 * Every clip is decoded with the LARP tokenizer the directory names; the output is one clip per sample.
 */
export interface LarpArGenerateOptions extends SamplingOptions {
  task: string;
  /** class: a class name or index. */
  label?: number | string;
  /** continue: the video (frames at the tokenizer's size). */
  video?: Frame[];
  /** continue: frames of the video that condition the clip (default: the directory's cond_frames, 5). */
  condFrames?: number;
  /** Guidance scale (default: the directory's sampling.cfg_scale). */
  cfg?: number;
  /** The reference's cfg_interval (default: the directory's, −1 = every token). */
  cfgInterval?: number;
  samples?: number;
  seed?: number;
  precision?: 'fp32' | 'int8';
  gray?: boolean;
  onProgress?: (p: GenerateProgress) => void;
}

/** What each task of a LARP AR model takes beside the sampling settings. */
export const LARP_AR_TASKS: Record<string, { given: 'label' | 'video'; frames: boolean }> = {
  class: { given: 'label', frames: false },
  continue: { given: 'video', frames: true },
  fp: { given: 'video', frames: true },
};

/** A class by name (exact, else ignoring case) or index; an unknown name lists the nearest ones. */
export function larpArClass(gen: LarpArGenerator, label: number | string): number {
  const n = gen.model.ref.num_classes,
    names = gen.config.class_names;
  const inRange = (k: number) => {
    check(Number.isInteger(k) && k >= 0 && k < n, `class ${k} is outside the model's ${n} classes (0 … ${n - 1})`);
    return k;
  };
  if (typeof label === 'number') return inRange(label);
  if (/^\d+$/.test(label.trim())) return inRange(Number(label));
  if (!names) throw new VtokError(`this model's classes have no names: give an index 0 … ${n - 1}`);
  const exact = names.indexOf(label);
  if (exact >= 0) return exact;
  const lower = label.toLowerCase();
  const folded = names.findIndex((x) => x.toLowerCase() === lower);
  if (folded >= 0) return folded;
  const near = names.filter((x) => x.toLowerCase().includes(lower) || lower.includes(x.toLowerCase()));
  const hint = near.length
    ? `did you mean ${near.slice(0, 5).join(', ')}?`
    : `known: ${names.slice(0, 8).join(', ')}, …`;
  throw new VtokError(`unknown class "${label}" (${hint})`);
}

/** A video's last `count` frames as one condition: tokens of the clip they start (last frame repeated) + separator. */
function conditionIds(gen: LarpArGenerator, video: Frame[], count: number, gray: boolean | undefined): Int32Array {
  const tok = gen.tokenizer,
    T = tok.clipFrames,
    size = tok.model.cfg.inputSize;
  check(Number.isInteger(count) && count >= 1 && count <= T, `condFrames must be in [1, ${T}], got ${count}`);
  check(video.length >= count, `the video has ${video.length} frame(s); frame prediction conditions on ${count}`);
  for (const f of video.slice(-count))
    if (f.width !== size || f.height !== size)
      throw new VtokError(`the video is ${f.width}×${f.height}; the tokenizer takes ${size}×${size} (resize it first)`);
  const frames = video.slice(video.length - count);
  while (frames.length < T) frames.push(frames[frames.length - 1]!);
  const ids = encodeClips(tok, framesToClip(frames, tok.channels, gray, 'the video')).ids;
  const cond = new Int32Array(ids.length + 1);
  cond.set(ids);
  cond[ids.length] = gen.model.ref.vocab_size;
  return cond;
}

/** The work of generating with a LARP AR model as steps (util/steps): yields after every drawn token. */
export function* larpArGenerateSteps(gen: LarpArGenerator, o: LarpArGenerateOptions): Steps<GenerateResult> {
  const ref = gen.model.ref;
  const task = LARP_AR_TASKS[o.task];
  if (!task) throw new VtokError(`unknown task "${o.task}" for a LARP AR model (it knows: class, continue)`);
  const wanted = ref.frame_prediction ? 'video' : 'label';
  if (task.given !== wanted)
    throw new VtokError(
      ref.frame_prediction
        ? `this is a frame-prediction model (LARP AR-FP): use --task continue with a video, not ${o.task}`
        : `this is a class-conditional model: use --task class with a label, not ${o.task}`,
    );
  const d = gen.config.sampling;
  const samples = o.samples ?? 1,
    cfg = o.cfg ?? d.cfg_scale,
    cfgInterval = o.cfgInterval ?? d.cfg_interval;
  const sampling: SamplingOptions = {
    temperature: o.temperature ?? d.temperature,
    topK: o.topK ?? (d.top_k > 0 ? d.top_k : undefined),
    topP: o.topP ?? (d.top_p < 1 ? d.top_p : undefined),
  };
  check(Number.isInteger(samples) && samples >= 1, `samples must be a positive integer, got ${samples}`);
  let classes: number[] | undefined, conds: Int32Array[] | undefined;
  if (task.given === 'label') {
    if (o.label === undefined) throw new VtokError('task class needs a class label');
    classes = [larpArClass(gen, o.label)];
  } else {
    if (!o.video) throw new VtokError('task continue needs a video');
    conds = [conditionIds(gen, o.video, o.condFrames ?? gen.config.cond_frames, o.gray)];
  }
  const decoder = new LarpArDecoder(gen.model, { precision: o.precision });
  try {
    const ids = yield* sampleLarpArSteps(gen.model, {
      ...sampling,
      classes,
      conds,
      samples,
      seed: o.seed ?? 0,
      cfgScale: cfg,
      cfgInterval,
      decoder,
      onProgress: (p) => o.onProgress?.({ segment: 0, segments: 1, ...p }),
    });
    const N = ref.max_seq_len,
      grid = [N];
    const tokens: VisualTokens[][] = Array.from({ length: samples }, (_, s) => [
      { ids: ids.slice(s * N, (s + 1) * N), grid },
    ]);
    const frames = decodeTokens(gen.tokenizer, { ids, n: samples, grid }, 1);
    const sequences = tokens.map(([t]) => {
      const c = conds?.[0] ?? new Int32Array(0);
      const q = new Int32Array(c.length + N);
      q.set(c);
      q.set(t!.ids, c.length);
      return q;
    });
    const settings = {
      ...(classes ? { class: classes[0], className: gen.config.class_names?.[classes[0]!] ?? null } : {}),
      cfg,
      cfgInterval,
      temperature: sampling.temperature,
      topK: sampling.topK ?? 0,
      topP: sampling.topP ?? 1,
    };
    return { frames, tokens, sequences, overlapFrames: 0, settings };
  } finally {
    decoder.dispose();
  }
}
