import { VtokError, check } from '../util/errors.js';
import type { Frame } from '../io/frame.js';

/**
 * SSIM as Wang et al. 2004 define it: local statistics under an 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
 * K2 = 0.03, C1 = (K1·R)², C2 = (K2·R)² with R the data range: 255 for uint8 frames, 1 for [0, 1] data. SSIM
 * is not shift-invariant, so tensors in [-1, 1] should be mapped to [0, 1] first ((x + 1) / 2, R = 1), which gives
 * the same value as their uint8 frames. Like the reference code the window only visits positions where it fits
 * whole ("valid"), and the result is the mean of the SSIM map; colour images are the mean over channels.
 */
export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;

export function gaussianWindow(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const g = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) s += g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) g[i]! /= s;
  return g;
}

const WINDOW = gaussianWindow();

/** Separable 'valid' filtering of one plane (w×h) → (w−10)×(h−10). */
export function filterValid(src: Float64Array, w: number, h: number): Float64Array {
  const k = WINDOW.length;
  const ow = w - k + 1;
  const oh = h - k + 1;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += WINDOW[i]! * src[y * w + x + i]!;
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += WINDOW[i]! * tmp[(y + i) * ow + x]!;
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean SSIM of one channel plane pair. */
export function ssimPlane(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  width: number,
  height: number,
  dataRange = 255,
): number {
  if (width < SSIM_WINDOW || height < SSIM_WINDOW) {
    throw new VtokError(`ssim: images must be at least ${SSIM_WINDOW}×${SSIM_WINDOW}, got ${width}×${height}`);
  }
  const n = width * height;
  const x = Float64Array.from({ length: n }, (_, i) => a[i]!);
  const y = Float64Array.from({ length: n }, (_, i) => b[i]!);
  const xx = x.map((v) => v * v);
  const yy = y.map((v) => v * v);
  const xy = x.map((v, i) => v * y[i]!);
  const [mx, my, sxx, syy, sxy] = [x, y, xx, yy, xy].map((p) => filterValid(p, width, height)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const c1 = (SSIM_K1 * dataRange) ** 2;
  const c2 = (SSIM_K2 * dataRange) ** 2;
  let sum = 0;
  for (let i = 0; i < mx.length; i++) {
    const ux = mx[i]!;
    const uy = my[i]!;
    const vx = sxx[i]! - ux * ux;
    const vy = syy[i]! - uy * uy;
    const cxy = sxy[i]! - ux * uy;
    sum += ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  }
  return sum / mx.length;
}

/** SSIM of two interleaved images (H×W×C), averaged over channels. */
export function ssimImage(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  width: number,
  height: number,
  channels = 3,
  dataRange = 255,
): number {
  const n = width * height;
  check(
    a.length === n * channels && b.length === n * channels,
    `ssim: expected ${n * channels} values, got ${a.length} and ${b.length}`,
  );
  let total = 0;
  for (let c = 0; c < channels; c++) {
    const pa = new Float64Array(n);
    const pb = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      pa[i] = a[i * channels + c]!;
      pb[i] = b[i * channels + c]!;
    }
    total += ssimPlane(pa, pb, width, height, dataRange);
  }
  return total / channels;
}

export function ssimFrame(a: Frame, b: Frame): number {
  check(
    a.width === b.width && a.height === b.height,
    `ssim: frame sizes differ (${a.width}×${a.height} vs ${b.width}×${b.height})`,
  );
  return ssimImage(a.data, b.data, a.width, a.height, 3, 255);
}

/** SSIM of each frame pair and the mean over frames. */
export function ssimFrames(a: Frame[], b: Frame[]): { perFrame: number[]; mean: number } {
  check(a.length === b.length && a.length > 0, `ssim: clips have ${a.length} and ${b.length} frames`);
  const perFrame = a.map((f, i) => ssimFrame(f, b[i]!));
  return { perFrame, mean: perFrame.reduce((s, v) => s + v, 0) / perFrame.length };
}
