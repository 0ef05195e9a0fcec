import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { guide, sampleRows, suppressIds, topK } from '../../src/util/sampling.js';
import { VtokError } from '../../src/util/errors.js';

const softmax = (l: number[], t: number) => {
  const e = l.map((x) => Math.exp(x / t));
  const s = e.reduce((a, b) => a + b);
  return e.map((x) => x / s);
};

test('sampleRows: frequencies match softmax, temperature, topK, topP, greedy', () => {
  const logits = [0, 1, 2, 0.5, -Infinity];
  const rows = 40_000;
  const cols = logits.length;
  const tiled = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) tiled.set(logits, r * cols);
  const freq = (s: Int32Array) => {
    const c = new Array(cols).fill(0);
    for (const x of s) c[x]++;
    return c.map((x) => x / s.length);
  };
  const rng = new Rng(41);
  for (const temperature of [1, 0.5, 2]) {
    const f = freq(sampleRows(tiled, rows, cols, rng, { temperature }));
    const p = softmax(logits, temperature);
    for (let j = 0; j < cols; j++)
      assert.ok(Math.abs(f[j]! - p[j]!) < 0.01, `T=${temperature} col ${j}: ${f[j]} vs ${p[j]}`);
    assert.equal(f[4], 0);
  }
  // topK = 2 keeps only columns 2 and 1, renormalised.
  const fk = freq(sampleRows(tiled, rows, cols, rng, { topK: 2 }));
  assert.equal(fk[0]! + fk[3]! + fk[4]!, 0);
  const pk = softmax([1, 2], 1);
  assert.ok(Math.abs(fk[1]! - pk[0]!) < 0.01 && Math.abs(fk[2]! - pk[1]!) < 0.01);
  // topK with ties keeps exactly K (lower index first).
  const tie = new Float32Array([1, 1, 1, 0]);
  const tk = new Set(
    sampleRows(new Float32Array(Array.from({ length: 2000 }, () => Array.from(tie)).flat()), 2000, 4, rng, { topK: 2 }),
  );
  assert.deepEqual([...tk].sort(), [0, 1]);
  // topP: probabilities [0.078, 0.213, 0.579, 0.129, 0]: topP 0.5 keeps only column 2; 0.75 keeps 2 and 1.
  const fp = freq(sampleRows(tiled, rows, cols, rng, { topP: 0.5 }));
  assert.equal(fp[2], 1);
  const fp2 = freq(sampleRows(tiled, rows, cols, rng, { topP: 0.75 }));
  assert.equal(fp2[0]! + fp2[3]!, 0);
  assert.ok(Math.abs(fp2[1]! - pk[0]!) < 0.01);
  // Greedy.
  assert.deepEqual(
    Array.from(sampleRows(new Float32Array([0.1, 3, 3, -1, 5, 2]), 2, 3, rng, { temperature: 0 })),
    [1, 1],
  );
  // Determinism and one block per row, greedy rows too.
  const a = new Rng(42);
  const s1 = sampleRows(tiled.subarray(0, 100 * cols), 100, cols, a);
  assert.equal(a.counter, 100n);
  assert.deepEqual(sampleRows(tiled.subarray(0, 100 * cols), 100, cols, new Rng(42)), s1);
  sampleRows(tiled.subarray(0, 7 * cols), 7, cols, a, { temperature: 0, topK: 2 });
  assert.equal(a.counter, 107n);
  assert.throws(() => sampleRows(new Float32Array([-Infinity, -Infinity]), 1, 2, rng), /all -Infinity/);
  assert.throws(() => sampleRows(new Float32Array(5), 2, 3, rng), VtokError);
  assert.throws(() => sampleRows(tiled.subarray(0, cols), 1, cols, rng, { topP: 0 }), /top-p must be in \(0, 1\]/);
  assert.throws(
    () => sampleRows(tiled.subarray(0, cols), 1, cols, rng, { topK: 1.5 }),
    /top-k must be a positive integer/,
  );
});

test(
  'top-k by quickselect keeps exactly the k largest logits, ' + 'ties by lower index, and draws as the full row would',
  () => {
    const gen = new Rng(11);
    const rows = 6,
      cols = 500;
    // few distinct values, so ties at the k-th value are common
    const logits = Float32Array.from(gen.randint(rows * cols, 0, 40), (v) => v / 7);
    for (const [k, temperature, topP] of [
      [1, 1, undefined],
      [7, 1, undefined],
      [50, 0.5, 0.9],
      [499, 2, undefined],
      [20, 0, undefined],
    ] as const) {
      // reference: a full sort by value (descending), then column; everything past the k-th set to −∞
      const masked = Float32Array.from(logits);
      const kept: number[][] = [];
      for (let r = 0; r < rows; r++) {
        const order = Array.from({ length: cols }, (_, j) => j).sort(
          (x, y) => logits[r * cols + y]! - logits[r * cols + x]! || x - y,
        );
        kept.push(order.slice(0, k).sort((x, y) => x - y));
        for (const j of order.slice(k)) masked[r * cols + j] = -Infinity;
      }
      const top = topK(logits, rows, cols, k);
      assert.deepEqual(Array.from(top.columns), kept.flat(), `k ${k}: columns`);
      assert.deepEqual(
        Array.from(top.logits),
        kept.flatMap((js, r) => js.map((j) => logits[r * cols + j]!)),
        `k ${k}: values`,
      );
      const a = sampleRows(logits, rows, cols, new Rng(3), { topK: k, temperature, topP });
      const b = sampleRows(masked, rows, cols, new Rng(3), { temperature, topP });
      assert.deepEqual([...a], [...b], `k ${k}`);
    }
    const bad = new Float32Array(cols);
    bad[3] = NaN;
    assert.throws(() => sampleRows(bad, 1, cols, new Rng(1), { topK: 5 }), /NaN at column 3/);
    assert.throws(() => sampleRows(bad, 1, cols, new Rng(1)), /NaN at column 3/);
  },
);

test('logit processors: guidance u + s(c − u); suppressed ids are never drawn', () => {
  assert.deepEqual([...guide(Float32Array.of(1, 2), Float32Array.of(0, 4), 3)], [3, -2]);
  const rows = 2000,
    cols = 4;
  const logits = suppressIds(new Float32Array(rows * cols), cols, [0, 2]);
  const drawn = sampleRows(logits, rows, cols, new Rng(5));
  const counts = [0, 0, 0, 0];
  for (const d of drawn) counts[d]!++;
  assert.equal(counts[0]! + counts[2]!, 0);
  assert.ok(Math.abs(counts[1]! / rows - 0.5) < 0.05, `${counts}`);
});
