import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapFrechet } from '../../src/metrics/frechet.js';
import { Rng } from '../../src/util/rng.js';

/** n draws of N(shift·1, I) in `dim` dimensions, row-major. */
const draws = (rng: Rng, n: number, dim: number, shift = 0) => rng.normal(n * dim, shift, 1);

test('bootstrapped Fréchet distance: the bias of small sets is estimated and removed, with a spread', () => {
  const rng = new Rng(11);
  const dim = 16,
    n = 96;
  // two sets from one Gaussian: the true distance is 0, the plug-in one is well above (noise in the covariances)
  const same = bootstrapFrechet(draws(rng, n, dim), draws(rng, n, dim), dim, { replicates: 100, seed: 1 });
  assert.ok(same.value > 1, `plug-in ${same.value}`);
  assert.ok(Math.abs(same.corrected) < same.value / 2, JSON.stringify(same));
  assert.ok(same.sd > 0 && same.replicates === 100);
  // means 1 apart in every dimension: the true distance is dim
  const apart = bootstrapFrechet(draws(rng, n, dim), draws(rng, n, dim, 1), dim, { replicates: 100, seed: 2 });
  assert.ok(Math.abs(apart.corrected - dim) < Math.abs(apart.value - dim), JSON.stringify(apart));
  // reproducible from its seed; sets of different sizes are allowed
  const a = draws(rng, n, dim),
    b = draws(rng, 40, dim);
  assert.deepEqual(
    bootstrapFrechet(a, b, dim, { replicates: 5, seed: 3 }),
    bootstrapFrechet(a, b, dim, { replicates: 5, seed: 3 }),
  );
  assert.throws(() => bootstrapFrechet(a, b, dim, { replicates: 1, seed: 3 }), /at least 2 replicates/);
  assert.throws(() => bootstrapFrechet(a, b.subarray(0, dim), dim, { replicates: 5, seed: 3 }), /at least 2 feature/);
});
