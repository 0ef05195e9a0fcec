import { clipsToTensor, type ClipTensor, type Frame } from './frame.js';
import { VtokError, check } from '../util/errors.js';

/**
 * Clip tensors (N×C×T×H×W in [-1, 1]): slices, joins, and frames → a model's input clip by the one channel rule
 * that encode, eval and generate share (`fitChannels`).
 */

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
  const plane = H * W,
    out = new Float32Array(N * C * (t1 - t0) * plane);
  for (let k = 0; k < N * C; k++)
    out.set(c.data.subarray((k * T + t0) * plane, (k * T + t1) * plane), k * (t1 - t0) * plane);
  return { data: out, shape: [N, C, t1 - t0, H, W] };
}

/** Clips of the same size and frame count, or of the same count and size joined along time (`axis` 'time'). */
export function joinClips(parts: ClipTensor[], axis: 'clips' | 'time'): ClipTensor {
  if (axis === 'clips') {
    const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    let off = 0;
    for (const p of parts) {
      data.set(p.data, off);
      off += p.data.length;
    }
    const [, C, T, H, W] = parts[0]!.shape;
    return { data, shape: [parts.reduce((n, p) => n + p.shape[0], 0), C, T, H, W] };
  }
  const [N, C, , H, W] = parts[0]!.shape as [number, number, number, number, number];
  const T = parts.reduce((n, p) => n + p.shape[2]!, 0),
    plane = H * W,
    out = new Float32Array(N * C * T * plane);
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
 * Fits RGB clips (N×3×T×H×W in [-1, 1]) to a model that takes gray input, the same way in every command (encode,
 * eval, generate): gray content (R = G = B up to codec noise) is taken as is; colour content is refused unless the
 * user asked for the conversion with --gray, because averaging the channels loses information the model never sees.
 * Returns the clips with the model's channel count and whether colour was converted.
 */
const NOISE = 3 * (2 / 255); // mean |R−G| + |G−B| of a gray video after lossy chroma coding: a few levels at most

export function fitChannels(
  data: Float32Array,
  shape: readonly number[],
  modelChannels: number,
  gray: boolean | undefined,
  source: string,
): ClipTensor & { converted: boolean } {
  const [n, c, T, H, W] = shape as [number, number, number, number, number];
  if (c === modelChannels) return { data, shape: [n, c, T, H, W], converted: false };
  if (modelChannels !== 1 || c !== 3)
    throw new VtokError(`the clips have ${c} channels, the model takes ${modelChannels}`, source);
  const plane = T * H * W;
  let spread = 0;
  for (let b = 0; b < n; b++) {
    const o = b * 3 * plane;
    for (let i = 0; i < plane; i++)
      spread +=
        Math.abs(data[o + i]! - data[o + plane + i]!) + Math.abs(data[o + plane + i]! - data[o + 2 * plane + i]!);
  }
  const colour = spread / (n * plane) > NOISE;
  if (colour && !gray)
    throw new VtokError(
      'the clips are in colour and the model takes gray (1 channel); add --gray to convert them',
      source,
    );
  const out = new Float32Array(n * plane);
  for (let b = 0; b < n; b++) {
    const o = b * 3 * plane;
    for (let i = 0; i < plane; i++)
      out[b * plane + i] = (data[o + i]! + data[o + plane + i]! + data[o + 2 * plane + i]!) / 3;
  }
  return { data: out, shape: [n, 1, T, H, W], converted: colour };
}

/** Frames of one clip (8-bit RGB) as a model's input clip, 1×C×T×H×W in [-1, 1], by the channel rule above. */
export function framesToClip(
  frames: Frame[],
  channels: number,
  gray: boolean | undefined,
  source: string,
): ClipTensor & { converted: boolean } {
  const t = clipsToTensor([frames]);
  return fitChannels(t.data, t.shape, channels, gray, source);
}
