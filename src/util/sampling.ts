import { VtokError, check } from './errors.js';
import type { Rng } from './rng.js';

/**
 * Sampling ids from logits, for every sampler in vtok (the prefix LM's, the study GPT's): the logit processors
 * (constraint to legal ids, classifier-free guidance, top-k) and the draw (greedy, or temperature, top-p and one
 * uniform per row). The seeded generator (util/rng) only supplies the numbers. Logits are row-major [rows, cols].
 * The quantizer's in-graph draw (quantizers/svq `sampleCategorical`) is a traced training op, not host sampling.
 */
export interface SamplingOptions {
  /** Softmax temperature (default 1; 0 = greedy: the largest logit, the first on ties). */
  temperature?: number;
  /** Keep only the k largest logits of each row (ties at the k-th value broken by lower index). */
  topK?: number;
  /** Nucleus, in (0, 1]: keep the smallest set of most probable ids whose probability reaches p (at least one). */
  topP?: number;
}

/** Constraint to the legal ids: `ids` get −∞ in every row, so they are never drawn. In place; returns `logits`. */
export function suppressIds(logits: Float32Array, cols: number, ids: readonly number[]): Float32Array {
  for (let o = 0; o < logits.length; o += cols) for (const id of ids) logits[o + id] = -Infinity;
  return logits;
}

/** Classifier-free guidance, u + s·(c − u), written into `cond`. */
export function guide(cond: Float32Array, uncond: Float32Array, scale: number): Float32Array {
  for (let i = 0; i < cond.length; i++) cond[i] = uncond[i]! + scale * (cond[i]! - uncond[i]!);
  return cond;
}

function checkNumbers(logits: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      if (Number.isNaN(logits[r * cols + j]!)) throw new VtokError(`sampling: logits row ${r} has NaN at column ${j}`);
    }
  }
}

/**
 * Top-k: each row narrowed to its k largest logits (every logit above the k-th, then ties at it by lower index),
 * kept in column order, with the columns they came from. Quickselect finds the k-th value in O(cols), so a
 * 2^18-wide visual range costs about a millisecond instead of a full sort.
 */
export function topK(
  logits: Float32Array,
  rows: number,
  cols: number,
  k: number,
): { logits: Float32Array; columns: Int32Array } {
  check(Number.isInteger(k) && k >= 1 && k <= cols, `top-k must be an integer in [1, ${cols}], got ${k}`);
  checkNumbers(logits, rows, cols);
  const sub = new Float32Array(rows * k),
    columns = new Int32Array(rows * k),
    scratch = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * cols, (r + 1) * cols);
    scratch.set(row);
    const kth = kthLargest(scratch, k);
    let greater = 0;
    for (let j = 0; j < cols; j++) if (row[j]! > kth) greater++;
    let ties = k - greater,
      n = 0;
    for (let j = 0; j < cols && n < k; j++) {
      const v = row[j]!;
      if (v > kth || (v === kth && ties-- > 0)) {
        sub[r * k + n] = v;
        columns[r * k + n] = j;
        n++;
      }
    }
  }
  return { logits: sub, columns };
}

/** The k-th largest value of `a` (reordered in place), by quickselect. */
function kthLargest(a: Float32Array, k: number): number {
  let lo = 0,
    hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo,
      j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

/** Greedy: the column of the row's largest logit, the first on ties. `r` names the row in errors. */
export function argmax(row: Float32Array, r = 0): number {
  let best = -1,
    bestV = -Infinity;
  for (let j = 0; j < row.length; j++) {
    const v = row[j]!;
    if (Number.isNaN(v)) throw new VtokError(`sampling: logits row ${r} has NaN at column ${j}`);
    if (v > bestV) {
      bestV = v;
      best = j;
    }
  }
  check(best >= 0, `sampling: logits row ${r} is all -Infinity`);
  return best;
}

/**
 * Temperature: the row's unnormalised softmax weights exp((x − max) / T) into `out` (−∞ gives 0); returns
 * their sum. `max` is the row's largest logit, so the largest weight is 1.
 */
export function softmaxWeights(row: Float32Array, max: number, temperature: number, out: Float64Array): number {
  let sum = 0;
  for (let j = 0; j < row.length; j++) {
    out[j] = row[j]! > -Infinity ? Math.exp((row[j]! - max) / temperature) : 0;
    sum += out[j]!;
  }
  return sum;
}

/**
 * Top-p: zeroes the weights outside the nucleus (the fewest largest weights, ties by lower index, whose sum reaches
 * p·sum; at least one); returns the nucleus's sum.
 */
export function nucleus(weights: Float64Array, sum: number, p: number): number {
  const idx: number[] = [];
  for (let j = 0; j < weights.length; j++) if (weights[j]! > 0) idx.push(j);
  idx.sort((x, y) => weights[y]! - weights[x]! || x - y);
  const target = p * sum;
  let cum = 0,
    k = 0;
  while (k < idx.length && (k === 0 || cum < target)) cum += weights[idx[k++]!]!;
  for (let m = k; m < idx.length; m++) weights[idx[m]!] = 0;
  return cum;
}

/** The draw: the first column where the running sum of the weights exceeds `target` (u·sum, u uniform in [0, 1)). */
export function drawIndex(weights: Float64Array, target: number): number {
  let acc = 0,
    chosen = 0;
  for (let j = 0; j < weights.length; j++) {
    if (!(weights[j]! > 0)) continue;
    chosen = j;
    acc += weights[j]!;
    if (acc > target) break;
  }
  return chosen;
}

/**
 * One id per row of `logits` [rows, cols]: top-k, then greedy or temperature, top-p and the draw. Every row takes
 * one block of `rng` (its uniform), greedy rows too, so a stream's position depends only on how many rows were drawn.
 */
export function sampleRows(
  logits: Float32Array,
  rows: number,
  cols: number,
  rng: Rng,
  o: SamplingOptions = {},
): Int32Array {
  const temperature = o.temperature ?? 1,
    { topK: k, topP } = o;
  check(Number.isSafeInteger(rows) && rows >= 0, `sampling: rows must be a non-negative integer, got ${rows}`);
  check(Number.isSafeInteger(cols) && cols >= 1, `sampling: cols must be a positive integer, got ${cols}`);
  check(logits.length === rows * cols, `sampling: logits has ${logits.length} values, expected ${rows}·${cols}`);
  check(Number.isFinite(temperature) && temperature >= 0, `sampling: temperature must be >= 0, got ${temperature}`);
  if (k !== undefined) check(Number.isSafeInteger(k) && k >= 1, `top-k must be a positive integer, got ${k}`);
  if (topP !== undefined) check(topP > 0 && topP <= 1, `sampling: top-p must be in (0, 1], got ${topP}`);
  if (k !== undefined && k < cols) {
    const top = topK(logits, rows, cols, k);
    return sampleRows(top.logits, rows, k, rng, { temperature, topP }).map((d, r) => top.columns[r * k + d]!);
  }
  const u = rng.uniform53(2 * rows); // one block per row: its first 53-bit uniform
  const out = new Int32Array(rows);
  const w = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * cols, (r + 1) * cols);
    const best = argmax(row, r);
    if (temperature === 0) {
      out[r] = best;
      continue;
    }
    let sum = softmaxWeights(row, row[best]!, temperature, w);
    if (topP !== undefined && topP < 1) sum = nucleus(w, sum, topP);
    out[r] = drawIndex(w, u[2 * r]! * sum);
  }
  return out;
}
