import { test } from 'node:test';
import assert from 'node:assert/strict';
import { psnr, psnrFrames, relativeRmsError } from '../../src/metrics/psnr.js';
import { gaussianWindow, ssimFrames, ssimImage, ssimPlane } from '../../src/metrics/ssim.js';
import type { Frame } from '../../src/io/frame.js';

const close = (a: number, b: number, tol: number, msg?: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${msg ?? ''} ${a} vs ${b}`);

test('PSNR on hand-computed cases', () => {
  // One pixel off by 10 in four: MSE = 25, PSNR = 10·log10(255²/25).
  close(psnr([0, 0, 0, 0], [0, 0, 0, 10]), 10 * Math.log10(65025 / 25), 1e-12);
  close(psnr([0, 0, 0, 0], [0, 0, 0, 10]), 34.1514, 1e-4);
  assert.equal(psnr([5, 6], [5, 6]), Infinity);
  // Data range 2 for [-1, 1] tensors: all values off by 0.2 → MSE 0.04 → 10·log10(4/0.04) = 20 dB.
  close(psnr([0.5, -0.5], [0.7, -0.3], 2), 20, 1e-9);
  // Per frame and averaged (identical frames capped at 100 dB).
  const f = (v: number): Frame => ({ width: 1, height: 1, data: new Uint8Array([v, v, v]) });
  const r = psnrFrames([f(0), f(0)], [f(0), f(10)]);
  assert.equal(r.perFrame[0], Infinity);
  close(r.perFrame[1]!, 10 * Math.log10(65025 / 100), 1e-12);
  close(r.mean, (100 + r.perFrame[1]!) / 2, 1e-12);
  assert.throws(() => psnr([1, 2], [1]), /2 and 1 values/);
});

test('the SSIM window is the normalised 11×11 Gaussian with σ = 1.5', () => {
  const g = gaussianWindow();
  assert.equal(g.length, 11);
  close(
    g.reduce((s, v) => s + v, 0),
    1,
    1e-12,
  );
  close(g[5]! / g[6]!, Math.exp(1 / (2 * 2.25)), 1e-12);
  close(g[0]! / g[5]!, Math.exp(-25 / 4.5), 1e-12);
});

test('SSIM of constant images has the closed form (2ab + C1)/(a² + b² + C1)', () => {
  const n = 16 * 13;
  const a = new Uint8Array(n).fill(100);
  const b = new Uint8Array(n).fill(150);
  const c1 = (0.01 * 255) ** 2;
  close(ssimPlane(a, b, 16, 13), (2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1), 1e-12);
  close(ssimPlane(a, a, 16, 13), 1, 1e-12);
});

/** SSIM computed the slow way: every 11×11 window position, 2-D Gaussian weights, statistics summed directly. */
function bruteSsim(x: number[], y: number[], w: number, h: number, R: number): number {
  const g = gaussianWindow();
  const c1 = (0.01 * R) ** 2;
  const c2 = (0.03 * R) ** 2;
  let total = 0;
  let count = 0;
  for (let y0 = 0; y0 + 11 <= h; y0++) {
    for (let x0 = 0; x0 + 11 <= w; x0++) {
      let mx = 0,
        my = 0;
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const wt = g[i]! * g[j]!;
          mx += wt * x[(y0 + i) * w + x0 + j]!;
          my += wt * y[(y0 + i) * w + x0 + j]!;
        }
      let vx = 0,
        vy = 0,
        cxy = 0;
      for (let i = 0; i < 11; i++)
        for (let j = 0; j < 11; j++) {
          const wt = g[i]! * g[j]!;
          const dx = x[(y0 + i) * w + x0 + j]! - mx;
          const dy = y[(y0 + i) * w + x0 + j]! - my;
          vx += wt * dx * dx;
          vy += wt * dy * dy;
          cxy += wt * dx * dy;
        }
      total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  }
  return total / count;
}

test('SSIM matches a direct window-by-window computation on random images', () => {
  let s = 12345;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const w = 17,
    h = 14;
  const x = Array.from({ length: w * h }, () => Math.floor(rnd() * 256));
  const noisy = x.map((v) => Math.min(255, Math.max(0, v + Math.floor((rnd() - 0.5) * 60))));
  const other = Array.from({ length: w * h }, () => Math.floor(rnd() * 256));
  for (const y of [noisy, other]) close(ssimPlane(x, y, w, h), bruteSsim(x, y, w, h, 255), 1e-10);
  // Noise lowers SSIM; unrelated images are far lower.
  assert.ok(ssimPlane(x, noisy, w, h) > ssimPlane(x, other, w, h) + 0.3);
  // Scaling the data and its range together changes nothing…
  close(
    ssimPlane(
      x.map((v) => v / 255),
      noisy.map((v) => v / 255),
      w,
      h,
      1,
    ),
    ssimPlane(x, noisy, w, h, 255),
    1e-9,
  );
  // …but shifting does (the luminance term is not shift-invariant), which is why [-1, 1] data is mapped to [0, 1].
  const shift = ssimPlane(
    x.map((v) => v / 127.5 - 1),
    noisy.map((v) => v / 127.5 - 1),
    w,
    h,
    2,
  );
  assert.ok(Math.abs(shift - ssimPlane(x, noisy, w, h, 255)) > 0.01);
});

test('colour SSIM is the mean over channels, per frame and averaged; small images are rejected', () => {
  const w = 12,
    h = 12,
    n = w * h;
  const a = new Uint8Array(n * 3);
  const b = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    a[i * 3] = 50;
    b[i * 3] = 50; // R identical → 1
    a[i * 3 + 1] = 100;
    b[i * 3 + 1] = 200; // G constant pair
    a[i * 3 + 2] = 0;
    b[i * 3 + 2] = 255; // B black vs white
  }
  const c1 = (0.01 * 255) ** 2;
  const g = (2 * 100 * 200 + c1) / (100 ** 2 + 200 ** 2 + c1);
  const bl = c1 / (255 ** 2 + c1);
  close(ssimImage(a, b, w, h, 3), (1 + g + bl) / 3, 1e-12);
  const fa: Frame = { width: w, height: h, data: a };
  const fb: Frame = { width: w, height: h, data: b };
  const r = ssimFrames([fa, fa], [fa, fb]);
  close(r.perFrame[0]!, 1, 1e-12);
  close(r.mean, (1 + (1 + g + bl) / 3) / 2, 1e-12);
  assert.throws(() => ssimPlane([1], [1], 1, 1), /at least 11×11/);
});

test('relativeRmsError: zero for equal arrays, ‖a − b‖ / ‖a‖ otherwise, and refuses different lengths', () => {
  assert.equal(relativeRmsError([3, 4], [3, 4]), 0);
  // a = (3, 4): ‖a‖ = 5; a − b = (0, 1)
  assert.ok(Math.abs(relativeRmsError([3, 4], [3, 3]) - 0.2) < 1e-12);
  assert.throws(() => relativeRmsError([1, 2], [1]), /2 vs 1 values/);
});
