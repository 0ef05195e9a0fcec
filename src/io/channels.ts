import type { ClipTensor } from './frame.js';
import { VtokError } from '../util/errors.js';

/**
 * Fits RGB clips (N×3×T×H×W in [-1, 1]) to a model that takes gray input, the same way in every command (encode,
 * eval): gray content (R = G = B up to codec noise) is taken as is; colour content is refused unless the user
 * asked for the conversion with --gray, because averaging the channels loses information the model never sees.
 * Returns the clips with the model's channel count and whether colour was converted.
 */
const NOISE = 3 * (2 / 255); // mean |R−G| + |G−B| of a gray video after lossy chroma coding: a few levels at most

export function fitChannels(data: Float32Array, shape: readonly number[], modelChannels: number, gray: boolean | undefined, source: string): ClipTensor & { converted: boolean } {
  const [n, c, T, H, W] = shape as [number, number, number, number, number];
  if (c === modelChannels) return { data, shape: [n, c, T, H, W], converted: false };
  if (modelChannels !== 1 || c !== 3) throw new VtokError(`the clips have ${c} channels, the model takes ${modelChannels}`, source);
  const plane = T * H * W;
  let spread = 0;
  for (let b = 0; b < n; b++) {
    const o = b * 3 * plane;
    for (let i = 0; i < plane; i++) spread += Math.abs(data[o + i]! - data[o + plane + i]!) + Math.abs(data[o + plane + i]! - data[o + 2 * plane + i]!);
  }
  const colour = spread / (n * plane) > NOISE;
  if (colour && !gray) throw new VtokError('the clips are in colour and the model takes gray (1 channel); add --gray to convert them', source);
  const out = new Float32Array(n * plane);
  for (let b = 0; b < n; b++) {
    const o = b * 3 * plane;
    for (let i = 0; i < plane; i++) out[b * plane + i] = (data[o + i]! + data[o + plane + i]! + data[o + 2 * plane + i]!) / 3;
  }
  return { data: out, shape: [n, 1, T, H, W], converted: colour };
}
