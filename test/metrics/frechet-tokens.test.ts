import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FeatureStats,
  featureStats,
  frechetDistance,
  frechetDistanceOf,
  type GaussianStats,
} from '../../src/metrics/frechet.js';
import { bitsPerPixel, codebookUsage, entropyBitsPerPixel } from '../../src/metrics/tokens.js';

const close = (a: number, b: number, tol: number, msg?: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${msg ?? ''} ${a} vs ${b}`);

function gaussian(mean: number[], cov: number[][]): GaussianStats {
  const d = mean.length;
  return { mean: Float64Array.from(mean), cov: Float64Array.from(cov.flat()), dim: d, count: 1000 };
}
const diag = (v: number[]) => v.map((x, i) => v.map((_, j) => (i === j ? x : 0)));

test('Fréchet distance of diagonal Gaussians: |μ1−μ2|² + Σ(σ1−σ2)²', () => {
  const a = gaussian([0, 1, 2], diag([1, 4, 9]));
  const b = gaussian([1, 1, 0], diag([4, 1, 9]));
  // means: 1 + 0 + 4 = 5; std devs (1,2,3) vs (2,1,3): 1 + 1 + 0 = 2
  close(frechetDistance(a, b), 7, 1e-9);
  close(frechetDistance(a, a), 0, 1e-9);
});

test('Fréchet distance with full covariances: scaled copies and rotations', () => {
  // Σ2 = c²Σ1 → tr√(Σ1Σ2) = c·trΣ1 → d² = (1−c)²·trΣ1.
  const s = [
    [4, 1.5, 0.3],
    [1.5, 3, -0.7],
    [0.3, -0.7, 2],
  ];
  const a = gaussian([0, 0, 0], s);
  const b = gaussian(
    [0, 0, 0],
    s.map((r) => r.map((v) => v * 9)),
  );
  close(frechetDistance(a, b), (1 - 3) ** 2 * 9, 1e-9);
  // Same spectrum, rotated: in 2-D, Σ1 = diag(4, 1) and Σ2 = R Σ1 Rᵀ with R a 90° rotation = diag(1, 4):
  // d² = (2−1)² + (1−2)² = 2.
  close(frechetDistance(gaussian([0, 0], diag([4, 1])), gaussian([0, 0], diag([1, 4]))), 2, 1e-9);
  // A singular covariance (rank 1) still gives a real, non-negative answer: N(0, diag(1,0)) vs N(0, diag(0,1)) → 2.
  close(frechetDistance(gaussian([0, 0], diag([1, 0])), gaussian([0, 0], diag([0, 1]))), 2, 1e-9);
});

test('feature statistics match the textbook estimates, streamed or in one go', () => {
  // Columns: x and 2x + 1 on x = 1..4: mean (2.5, 6), var 5/3, cov 10/3, var 20/3.
  const f = [1, 3, 2, 5, 3, 7, 4, 9];
  const st = featureStats(f, 2);
  assert.deepEqual([...st.mean], [2.5, 6]);
  close(st.cov[0]!, 5 / 3, 1e-12);
  close(st.cov[1]!, 10 / 3, 1e-12);
  close(st.cov[2]!, 10 / 3, 1e-12);
  close(st.cov[3]!, 20 / 3, 1e-12);
  const streamed = new FeatureStats(2).add(f.slice(0, 2)).add(f.slice(2, 6)).add(f.slice(6)).stats();
  for (let i = 0; i < 4; i++) close(streamed.cov[i]!, st.cov[i]!, 1e-12);
  // Large offsets do not cost precision (sums are taken about the first vector).
  const big = f.map((v) => v + 1e9);
  close(featureStats(big, 2).cov[3]!, 20 / 3, 1e-6);
  assert.throws(() => featureStats([1, 2], 2), /at least 2 feature vectors/);
  assert.throws(() => new FeatureStats(2).add([1, 2, 3]), /not a multiple/);
});

test('sampled features: identical sets give 0, a shifted set gives the squared shift', () => {
  let s = 99;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const n = 400,
    d = 6;
  const x = Array.from({ length: n * d }, () => rnd() * 2 - 1 + rnd());
  close(frechetDistanceOf(x, x, d), 0, 1e-6);
  const shifted = x.map((v, i) => v + (i % d === 2 ? 0.5 : 0));
  close(frechetDistanceOf(x, shifted, d), 0.25, 1e-6);
  // Doubling the spread of one dimension with variance v adds (√(4v) − √v)² = v.
  const st = featureStats(x, d);
  const m2 = st.mean[3]!;
  const spread = x.map((v, i) => (i % d === 3 ? m2 + 2 * (v - m2) : v));
  close(frechetDistanceOf(x, spread, d), st.cov[3 * d + 3]!, 1e-6);
});

test('bits per pixel and codebook statistics', () => {
  // MAGVIT-v2 at 17×128×128 → 5×16×16 tokens from a 2^18 vocabulary: 1280·18 / 278528 bits per pixel.
  close(bitsPerPixel(5 * 16 * 16, 2 ** 18, 17, 128, 128), (1280 * 18) / (17 * 128 * 128), 1e-15);
  close(bitsPerPixel(1, 1000, 1, 1, 1), 10, 0);
  const uniform = codebookUsage([0, 1, 2, 3, 0, 1, 2, 3], 8);
  assert.equal(uniform.used, 4);
  assert.equal(uniform.usage, 0.5);
  close(uniform.entropyBits, 2, 1e-12);
  close(uniform.perplexity, 4, 1e-12);
  const one = codebookUsage([[5, 5], [5]], 8);
  assert.deepEqual([one.used, one.tokens, one.perplexity, one.counts[5]], [1, 3, 1, 3]);
  // p = (1/2, 1/4, 1/4): H = 1.5 bits.
  const skew = codebookUsage(new Int32Array([0, 0, 1, 2]), 4);
  close(skew.entropyBits, 1.5, 1e-12);
  close(entropyBitsPerPixel(skew, 16), (4 * 1.5) / 16, 1e-12);
  assert.throws(() => codebookUsage([9], 8), /outside the vocabulary/);
});
