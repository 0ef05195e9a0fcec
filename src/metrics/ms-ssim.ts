import { check } from '../util/errors.js';
import type { Frame } from '../io/frame.js';
import { SSIM_K1, SSIM_K2, SSIM_WINDOW, filterValid } from './ssim.js';

/**
 * Multi-scale SSIM (Wang, Simoncelli & Bovik 2003): contrast-structure at each scale, luminance too at the
 * coarsest, images halved by 2×2 averaging between scales, combined as Π cs_j^w_j · ssim_M^w_M with the paper's
 * weights. As in the common implementations (pytorch_msssim, TensorFlow) the coarsest term is the mean SSIM map,
 * negative terms are clamped to 0, and the window is SSIM's 11×11 Gaussian, valid positions only.
 *
 * Five scales need a short side of at least 11·2⁴ = 176 pixels; smaller images (128×128 clips) use as many scales
 * as fit, with the first weights renormalised to sum to 1 (four scales at 128). The number of scales used is
 * returned, so that results are reported with it.
 */
export const MS_SSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/** Scales that fit a w×h image (the coarsest must still hold an 11×11 window), at most 5. */
export function msSsimScales(width: number, height: number): number {
  let n = 0;
  for (let s = Math.min(width, height); s >= SSIM_WINDOW && n < MS_SSIM_WEIGHTS.length; s = Math.floor(s / 2)) n++;
  return n;
}

function halve(p: Float64Array, w: number, h: number): [Float64Array, number, number] {
  const ow = Math.floor(w / 2),
    oh = Math.floor(h / 2);
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const i = 2 * y * w + 2 * x;
      out[y * ow + x] = (p[i]! + p[i + 1]! + p[i + w]! + p[i + w + 1]!) / 4;
    }
  }
  return [out, ow, oh];
}

/** Mean contrast-structure and mean SSIM of one plane pair at one scale. */
function csAndSsim(x: Float64Array, y: Float64Array, w: number, h: number, dataRange: number): [number, number] {
  const [mx, my, sxx, syy, sxy] = [x, y, x.map((v) => v * v), y.map((v) => v * v), x.map((v, i) => v * y[i]!)].map(
    (p) => filterValid(p, w, h),
  ) as Float64Array[];
  const c1 = (SSIM_K1 * dataRange) ** 2,
    c2 = (SSIM_K2 * dataRange) ** 2;
  let cs = 0,
    ssim = 0;
  for (let i = 0; i < mx!.length; i++) {
    const ux = mx![i]!,
      uy = my![i]!;
    const vx = sxx![i]! - ux * ux,
      vy = syy![i]! - uy * uy,
      cxy = sxy![i]! - ux * uy;
    const c = (2 * cxy + c2) / (vx + vy + c2);
    cs += c;
    ssim += ((2 * ux * uy + c1) / (ux * ux + uy * uy + c1)) * c;
  }
  return [cs / mx!.length, ssim / mx!.length];
}

/** MS-SSIM of one channel plane pair (w×h); `scales` defaults to as many as fit. */
export function msSsimPlane(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  width: number,
  height: number,
  dataRange = 255,
  scales = msSsimScales(width, height),
): number {
  check(
    scales >= 1 && scales <= MS_SSIM_WEIGHTS.length,
    `ms-ssim: ${width}×${height} images are too small (at least ` +
      `${SSIM_WINDOW}×${SSIM_WINDOW}) or scales ${scales} is not in 1..${MS_SSIM_WEIGHTS.length}`,
  );
  check(
    Math.min(width, height) >> (scales - 1) >= SSIM_WINDOW,
    `ms-ssim: ${scales} scales need a short side of at least ` +
      `${SSIM_WINDOW << (scales - 1)}, got ${Math.min(width, height)}`,
  );
  check(
    a.length === width * height && b.length === width * height,
    `ms-ssim: expected ${width * height} values, got ${a.length} and ${b.length}`,
  );
  const weights = MS_SSIM_WEIGHTS.slice(0, scales);
  const total = weights.reduce((s, v) => s + v, 0);
  let x: Float64Array = Float64Array.from(a),
    y: Float64Array = Float64Array.from(b),
    w = width,
    h = height;
  let result = 1;
  for (let j = 0; j < scales; j++) {
    const [cs, ssim] = csAndSsim(x, y, w, h, dataRange);
    const term = j === scales - 1 ? ssim : cs;
    result *= Math.max(0, term) ** (weights[j]! / total);
    if (j < scales - 1) {
      [x] = halve(x, w, h);
      [y, w, h] = halve(y, w, h);
    }
  }
  return result;
}

/** MS-SSIM of two RGB frames, the mean over channels. */
export function msSsimFrame(a: Frame, b: Frame, scales?: number): number {
  check(
    a.width === b.width && a.height === b.height,
    `ms-ssim: frame sizes differ (${a.width}×${a.height} vs ${b.width}×${b.height})`,
  );
  const n = a.width * a.height;
  let sum = 0;
  for (let c = 0; c < 3; c++) {
    const pa = new Float64Array(n),
      pb = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      pa[i] = a.data[i * 3 + c]!;
      pb[i] = b.data[i * 3 + c]!;
    }
    sum += msSsimPlane(pa, pb, a.width, a.height, 255, scales);
  }
  return sum / 3;
}

/** MS-SSIM of each frame pair and the mean over frames. */
export function msSsimFrames(a: Frame[], b: Frame[], scales?: number): { perFrame: number[]; mean: number } {
  check(a.length === b.length && a.length > 0, `ms-ssim: clips have ${a.length} and ${b.length} frames`);
  const perFrame = a.map((f, i) => msSsimFrame(f, b[i]!, scales));
  return { perFrame, mean: perFrame.reduce((s, v) => s + v, 0) / perFrame.length };
}
