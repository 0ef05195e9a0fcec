import { check } from '../util/errors.js';
import type { Frame } from '../io/frame.js';

/**
 * Peak signal-to-noise ratio, 10·log10(R² / MSE) in dB, where R is the data range: 255 for uint8 frames, 2 for
 * tensors in [-1, 1]. Identical inputs give Infinity.
 */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, dataRange = 255): number {
  return psnrFromMse(mse(a, b), dataRange);
}

export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  check(a.length === b.length && a.length > 0, `psnr: inputs have ${a.length} and ${b.length} values`);
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s / a.length;
}

/** RMS of a − b relative to the RMS of a (0 = identical; how far a reduced-precision output is from the reference). */
export function relativeRmsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeRmsError: ${a.length} vs ${b.length} values`);
  let se = 0,
    ss = 0;
  for (let i = 0; i < a.length; i++) {
    se += (a[i]! - b[i]!) ** 2;
    ss += a[i]! ** 2;
  }
  return Math.sqrt(se / ss);
}

export function psnrFromMse(m: number, dataRange = 255): number {
  return m === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / m);
}

/**
 * PSNR of each frame pair and their mean. The mean is of per-frame PSNRs (the convention of video tokenizer
 * papers), with identical frames capped at 100 dB so one perfect frame does not make the mean infinite.
 */
export function psnrFrames(a: Frame[], b: Frame[]): { perFrame: number[]; mean: number } {
  check(a.length === b.length && a.length > 0, `psnr: clips have ${a.length} and ${b.length} frames`);
  const perFrame = a.map((f, i) => {
    check(
      f.width === b[i]!.width && f.height === b[i]!.height,
      `psnr: frame ${i} sizes differ (${f.width}×${f.height} vs ${b[i]!.width}×${b[i]!.height})`,
    );
    return psnr(f.data, b[i]!.data);
  });
  return { perFrame, mean: meanCapped(perFrame) };
}

export const PSNR_CAP = 100;

export function meanCapped(values: number[]): number {
  return values.reduce((s, v) => s + Math.min(v, PSNR_CAP), 0) / values.length;
}
