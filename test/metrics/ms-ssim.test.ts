import { test } from 'node:test';
import assert from 'node:assert/strict';
import { msSsimFrames, msSsimPlane, msSsimScales } from '../../src/metrics/ms-ssim.js';
import { ssimPlane } from '../../src/metrics/ssim.js';

function lcg(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) % 2 ** 32;
    out[i] = s / 2 ** 32;
  }
  return out;
}

// A smooth pattern plus noise, and a noisier copy (the same images as the reference script's).
const H = 128,
  W = 96;
const na = lcg(H * W, 1),
  nb = lcg(H * W, 2);
const a = Float64Array.from(
  { length: H * W },
  (_, i) => 128 + 60 * Math.sin((i % W) / 7) * Math.cos(Math.floor(i / W) / 11) + 40 * (na[i]! - 0.5),
);
const b = a.map((v, i) => v + 50 * (nb[i]! - 0.5));

test('MS-SSIM matches an independent NumPy/SciPy implementation of the pytorch_msssim algorithm', () => {
  // Values from a NumPy script (scipy.signal.convolve2d 'valid' Gaussian filtering, 2×2 mean pooling, weights
  // renormalised over the scales used) on exactly these images.
  const ref: Record<number, number> = {
    1: 0.6730091080190048,
    2: 0.8635137890577661,
    3: 0.9213512187520431,
    4: 0.9416573607944372,
  };
  for (const s of [1, 2, 3, 4])
    assert.ok(
      Math.abs(msSsimPlane(a, b, W, H, 255, s) - ref[s]!) < 1e-9,
      `scales ${s}: ${msSsimPlane(a, b, W, H, 255, s)} vs ${ref[s]}`,
    );
  assert.equal(msSsimScales(W, H), 4);
  assert.ok(Math.abs(msSsimPlane(a, b, W, H) - ref[4]!) < 1e-9);
});

test('MS-SSIM: one scale is SSIM, identical images give 1, more noise gives less', () => {
  assert.ok(Math.abs(msSsimPlane(a, b, W, H, 255, 1) - ssimPlane(a, b, W, H)) < 1e-12);
  assert.ok(Math.abs(msSsimPlane(a, a, W, H) - 1) < 1e-12);
  const worse = a.map((v, i) => v + 120 * (nb[i]! - 0.5));
  assert.ok(msSsimPlane(a, worse, W, H) < msSsimPlane(a, b, W, H));
  assert.equal(msSsimScales(256, 300), 5);
  assert.equal(msSsimScales(10, 40), 0);
});

test('MS-SSIM: frames average over channels and frames; bad sizes are clear errors', () => {
  const f = (p: Float64Array) => ({
    width: W,
    height: H,
    data: Uint8Array.from({ length: H * W * 3 }, (_, i) =>
      Math.max(0, Math.min(255, Math.round(p[Math.floor(i / 3)]!))),
    ),
  });
  const r = msSsimFrames([f(a), f(a)], [f(a), f(b)]);
  assert.equal(r.perFrame[0], 1);
  assert.ok(r.perFrame[1]! < 0.99 && Math.abs(r.mean - (1 + r.perFrame[1]!) / 2) < 1e-12);
  assert.throws(() => msSsimPlane(a, b, W, H, 255, 5), /5 scales need a short side of at least 176, got 96/);
  assert.throws(() => msSsimPlane(new Float64Array(64), new Float64Array(64), 8, 8), /too small/);
  assert.throws(() => msSsimFrames([f(a)], []), /clips have 1 and 0 frames/);
});
