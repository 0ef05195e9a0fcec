import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { check } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/**
 * Fréchet distance between two Gaussians fitted to feature sets — the math of FID and FVD:
 *   d² = |μ1 − μ2|² + tr(Σ1) + tr(Σ2) − 2·tr((Σ1 Σ2)^½)
 * with tr((Σ1 Σ2)^½) = Σ √λ_i(√Σ1 Σ2 √Σ1): that matrix is symmetric PSD, so a symmetric eigendecomposition
 * (ml-matrix) is enough and stays real where a general matrix square root would go complex from round-off.
 */

export interface GaussianStats {
  mean: Float64Array;
  /** d×d row-major, unbiased (n − 1), as numpy.cov. */
  cov: Float64Array;
  dim: number;
  count: number;
}

/**
 * Accumulates mean and covariance of feature vectors as they arrive, so features of a large set never need to be
 * held together. Sums are taken about the first vector seen, which keeps float64 cancellation small.
 */
export class FeatureStats {
  private shift?: Float64Array;
  private s1: Float64Array;
  private s2: Float64Array;
  count = 0;

  constructor(readonly dim: number) {
    check(Number.isInteger(dim) && dim > 0, `feature dimension must be a positive integer, got ${dim}`);
    this.s1 = new Float64Array(dim);
    this.s2 = new Float64Array(dim * dim);
  }

  /** Adds `n` vectors stored row-major in `features` (length n·dim). */
  add(features: ArrayLike<number>): this {
    const d = this.dim;
    check(features.length % d === 0, `features have ${features.length} values, not a multiple of the dimension ${d}`);
    const x = new Float64Array(d);
    for (let r = 0; r < features.length / d; r++) {
      if (!this.shift) this.shift = Float64Array.from({ length: d }, (_, j) => features[j]!);
      for (let j = 0; j < d; j++) {
        const v = features[r * d + j]!;
        check(Number.isFinite(v), `feature ${this.count}, component ${j} is ${v}`);
        x[j] = v - this.shift[j]!;
      }
      for (let i = 0; i < d; i++) {
        const xi = x[i]!;
        this.s1[i]! += xi;
        if (xi === 0) continue;
        const row = i * d;
        for (let j = i; j < d; j++) this.s2[row + j]! += xi * x[j]!;
      }
      this.count++;
    }
    return this;
  }

  stats(): GaussianStats {
    const n = this.count;
    const d = this.dim;
    check(n >= 2, `need at least 2 feature vectors for a covariance, have ${n}`);
    const m = this.s1.map((v) => v / n);
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const c = (this.s2[i * d + j]! - n * m[i]! * m[j]!) / (n - 1);
        cov[i * d + j] = c;
        cov[j * d + i] = c;
      }
    }
    return { mean: m.map((v, i) => v + this.shift![i]!), cov, dim: d, count: n };
  }
}

/** Mean and covariance of n feature vectors (row-major n×dim). */
export function featureStats(features: ArrayLike<number>, dim: number): GaussianStats {
  return new FeatureStats(dim).add(features).stats();
}

function toMatrix(a: Float64Array, d: number): Matrix {
  const m = new Matrix(d, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m.set(i, j, a[i * d + j]!);
  return m;
}

/** Symmetric PSD square root via eigendecomposition; tiny negative eigenvalues from round-off are clipped. */
export function sqrtSymmetric(m: Matrix): Matrix {
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const v = e.eigenvectorMatrix;
  const s = Matrix.diag(e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0))));
  return v.mmul(s).mmul(v.transpose());
}

/** tr((Σ1 Σ2)^½). */
export function traceSqrtProduct(cov1: Float64Array, cov2: Float64Array, d: number): number {
  const r1 = sqrtSymmetric(toMatrix(cov1, d));
  const inner = r1.mmul(toMatrix(cov2, d)).mmul(r1);
  const sym = inner.add(inner.transpose()).mul(0.5); // exact symmetry for the symmetric solver
  const e = new EigenvalueDecomposition(sym, { assumeSymmetric: true });
  return e.realEigenvalues.reduce((s, l) => s + Math.sqrt(Math.max(l, 0)), 0);
}

/** The Fréchet distance (squared, as FID/FVD report it) between two fitted Gaussians. */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  check(a.dim === b.dim, `feature dimensions differ: ${a.dim} vs ${b.dim}`);
  const d = a.dim;
  let meanTerm = 0;
  let tr = 0;
  for (let i = 0; i < d; i++) {
    meanTerm += (a.mean[i]! - b.mean[i]!) ** 2;
    tr += a.cov[i * d + i]! + b.cov[i * d + i]!;
  }
  return Math.max(0, meanTerm + tr - 2 * traceSqrtProduct(a.cov, b.cov, d));
}

/** Fréchet distance between two feature sets given as row-major n×dim arrays. */
export function frechetDistanceOf(featuresA: ArrayLike<number>, featuresB: ArrayLike<number>, dim: number): number {
  return frechetDistance(featureStats(featuresA, dim), featureStats(featuresB, dim));
}

/** A Fréchet distance between two sets of n and m feature vectors, with its bootstrap (see bootstrapFrechet). */
export interface FrechetEstimate {
  /** The plug-in distance of the two sets. */
  value: number;
  /** value − (mean of the replicates − value): the bootstrap's estimate of the finite-sample bias removed. */
  corrected: number;
  /** Standard deviation of the replicates: the spread of the distance over clips. */
  sd: number;
  replicates: number;
}

/**
 * The Fréchet distance of two feature sets (row-major n×dim and m×dim) with a bootstrap over their rows: each
 * replicate draws n rows of `a` and m of `b` with replacement. A distance fitted to n samples is biased upwards (the
 * covariances' noise adds to the traces, of order dim²/n), so sets of different sizes do not compare;
 * the bootstrap estimates that bias from the data (mean replicate − value, first order) and the distance's spread.
 * The corrected figure can fall below 0 for sets from one distribution (their true distance is 0).
 */
export function bootstrapFrechet(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dim: number,
  o: { replicates: number; seed: number },
): FrechetEstimate {
  const R = o.replicates;
  check(Number.isInteger(R) && R >= 2, `bootstrap: need at least 2 replicates, got ${R}`);
  check(a.length % dim === 0 && b.length % dim === 0, `bootstrap: features are not rows of ${dim}`);
  check(a.length >= 2 * dim && b.length >= 2 * dim, 'bootstrap: each set needs at least 2 feature vectors');
  const value = frechetDistanceOf(a, b, dim);
  const rng = new Rng(o.seed);
  const resample = (x: ArrayLike<number>): FeatureStats => {
    const n = x.length / dim,
      pick = rng.u32(n),
      rows = new Float64Array(n * dim);
    for (let r = 0; r < n; r++) {
      const src = (pick[r]! % n) * dim;
      for (let j = 0; j < dim; j++) rows[r * dim + j] = x[src + j]!;
    }
    return new FeatureStats(dim).add(rows);
  };
  const reps = Array.from({ length: R }, () => frechetDistance(resample(a).stats(), resample(b).stats()));
  const mean = reps.reduce((s, v) => s + v, 0) / R;
  const sd = Math.sqrt(reps.reduce((s, v) => s + (v - mean) ** 2, 0) / (R - 1));
  return { value, corrected: 2 * value - mean, sd, replicates: R };
}
