import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import {
  commitmentLoss,
  defaultGroupBits,
  entropyGroups,
  LFQ,
  lfqCodebook,
  lfqCodes,
  lfqEntropy,
  lfqLoss,
  lfqQuantize,
  perSampleEntropy,
} from '../../src/quantizers/lfq.js';
import { Rng } from '../../src/util/rng.js';

/** LFQ: ids and bit order, codes, the entropy terms against a plain-JS 2^D softmax, sub-groups, gradients. */

/** Channels-first [1, D, n] latents from token rows (n tokens × D bits). */
function latents(rows: number[][]): Tensor {
  const d = rows[0]!.length,
    n = rows.length;
  const v = new Float32Array(d * n);
  rows.forEach((r, j) => {
    r.forEach((x, i) => {
      v[i * n + j] = x;
    });
  });
  return E.tensor(v, [1, d, n]);
}

/** Plain-JS reference: p(c | x) = softmax(2 x·c / τ) over all 2^D codes, in float64. */
function jsEntropies(rows: number[][], tau: number, style: 'open' | 'clamp') {
  const d = rows[0]!.length,
    k = 2 ** d;
  const avg = new Float64Array(k);
  let perSample = 0;
  for (const x of rows) {
    const logits = Array.from({ length: k }, (_, c) => {
      let s = 0;
      for (let i = 0; i < d; i++) s += 2 * x[i]! * ((c >> i) & 1 ? 1 : -1);
      return s / tau;
    });
    const m = Math.max(...logits);
    const z = logits.reduce((a, l) => a + Math.exp(l - m), 0);
    const lse = m + Math.log(z);
    for (let c = 0; c < k; c++) {
      const p = Math.exp(logits[c]! - lse);
      avg[c]! += p / rows.length;
      perSample -= (p * (style === 'open' ? logits[c]! - lse : Math.log(Math.max(p, 1e-5)))) / rows.length;
    }
  }
  let codebook = 0;
  for (const p of avg) codebook -= p * (style === 'open' ? Math.log(p + 1e-5) : Math.log(Math.max(p, 1e-5)));
  return { perSample, codebook };
}

/** Entropy terms computed as one compiled graph (eager mode would compile every op on its own). */
function entropies(z: Tensor, o: Parameters<typeof lfqEntropy>[1] = {}): { perSample: number; codebook: number } {
  const r = E.jit((x: Tensor) => ({ ...lfqEntropy(x, o) }))(z) as { perSample: Tensor; codebook: Tensor };
  return { perSample: E.item(r.perSample), codebook: E.item(r.codebook) };
}

const randomRows = (n: number, d: number, std: number, seed: number) => {
  const r = new Rng(seed);
  const v = r.normal(n * d);
  return Array.from({ length: n }, (_, j) => Array.from({ length: d }, (_, i) => v[j * d + i]! * std));
};

describe('LFQ quantization and ids', () => {
  it('codes are signs (0 → −1) and ids put channel 0 in the lowest bit (msb: the highest)', () => {
    const z = latents([
      [0.3, -1, -1, -1, -1],
      [-1, -1, -1, -1, 2],
      [0, 0, 0, 0, 0],
      [1, 1, 1, 1, 1],
      [0.1, -0.2, 0.3, 0, 1e-6],
    ]);
    const lsb = lfqQuantize(z, 'lsb');
    assert.deepEqual(E.toArray(lsb.indices), [1, 16, 0, 31, 1 + 4 + 16]);
    assert.deepEqual(lsb.indices.shape, [1, 5]);
    assert.equal(lsb.indices.dtype, 'int64');
    assert.deepEqual(E.toArray(lfqQuantize(z, 'msb').indices), [16, 1, 0, 31, 16 + 4 + 1]);
    const q = E.toArray(lsb.quantized);
    assert.deepEqual(q.slice(0, 5), [1, -1, -1, 1, 1]); // channel 0 over the five tokens
    assert.deepEqual(q.slice(15, 20), [-1, -1, -1, 1, -1]); // channel 3: 0 → −1
  });

  it('ids → codes inverts quantization for both bit orders, and codebook row j is the code of id j', () => {
    const z = E.tensor(new Rng(3).normal(2 * 7 * 3 * 4), [2, 7, 3, 4]);
    for (const order of ['lsb', 'msb'] as const) {
      const { quantized, indices } = lfqQuantize(z, order);
      assert.deepEqual(E.toArray(lfqCodes(indices, 7, order)), E.toArray(quantized));
      const cb = lfqCodebook(7, order);
      // ids [128] read as a batch of 128 single tokens → codes [128, 7], the codebook's rows.
      assert.deepEqual(E.toArray(lfqCodes(E.arange(0, 128), 7, order)), E.toArray(cb));
    }
    // Large vocabularies: ids above 2^24 survive the round trip exactly.
    const big = E.tensor([2 ** 30 - 1, 2 ** 29 + 5, 0], [1, 3], 'int64');
    const codes = lfqCodes(big, 30);
    assert.deepEqual(E.toArray(lfqQuantize(codes).indices), [2 ** 30 - 1, 2 ** 29 + 5, 0]);
  });

  it('the LFQ module decodes its own ids and rejects a latent of the wrong width', () => {
    const lfq = new LFQ({ dim: 6 }).eval();
    const z = E.tensor(new Rng(4).normal(6 * 10), [1, 6, 10]);
    const out = lfq.forward(z);
    assert.equal(out.losses, undefined);
    assert.deepEqual(E.toArray(lfq.decode(out.indices)), E.toArray(out.quantized));
    assert.equal(lfq.codebookSize, 64);
    assert.deepEqual(lfq.namedParams(), []);
    assert.throws(() => lfq.forward(E.zeros([1, 5, 3])), /5 channels, expected 6/);
    assert.deepEqual(
      new LFQ({ dim: 4, bitOrder: 'msb', maskBuffer: true }).namedParams().map(([n, p]) => [n, E.toArray(p.value)]),
      [['mask', [8, 4, 2, 1]]],
    );
  });
});

describe('LFQ entropy', () => {
  const rows = randomRows(24, 5, 0.01, 11);

  it('per-sample and codebook entropy equal a plain-JS 2^D softmax (Open-MAGVIT2 form)', () => {
    const want = jsEntropies(rows, 0.01, 'open');
    const got = entropies(latents(rows), { groupBits: 5 });
    assert.ok(Math.abs(got.perSample - want.perSample) < 2e-5, `${got.perSample} vs ${want.perSample}`);
    assert.ok(Math.abs(got.codebook - want.codebook) < 2e-5, `${got.codebook} vs ${want.codebook}`);
    // Non-trivial regime: neither 0 nor maximal.
    assert.ok(want.perSample > 0.5 && want.perSample < 5 * Math.LN2 - 0.1);
  });

  it(
    'the lucidrains form (clamped log in both terms) equals ' +
      'its plain-JS computation and differs from Open-MAGVIT2',
    () => {
      const want = jsEntropies(rows, 0.01, 'clamp');
      const got = entropies(latents(rows), { groupBits: 5, style: 'lucidrains' });
      assert.ok(Math.abs(got.perSample - want.perSample) < 2e-5);
      assert.ok(Math.abs(got.codebook - want.codebook) < 2e-5);
    },
  );

  it('the factorised per-sample entropy stays finite for confident latents and is ln 2 per bit at zero', () => {
    const big = E.item(perSampleEntropy(E.tensor([3, -2.5, 1e3, -1e3, 0.5, -0.5], [1, 6])));
    assert.ok(Number.isFinite(big) && big >= 0 && big < 1e-30);
    assert.ok(Math.abs(E.item(perSampleEntropy(E.zeros([4, 7]))) - 7 * Math.LN2) < 1e-5);
  });

  it('sub-group codebook entropy equals the joint entropy when the groups are independent in the batch', () => {
    // Confident tokens whose bits 0-1 take 3 patterns and bits 2-4 take 2, every combination once: 6 codes.
    const a = [
        [1, -1],
        [-1, 1],
        [1, 1],
      ],
      b = [
        [1, 1, -1],
        [-1, -1, 1],
      ];
    const prod = a.flatMap((x) => b.map((y) => [...x, ...y]));
    const z = latents(prod);
    const joint = entropies(z, { groupBits: 5 }).codebook;
    assert.ok(Math.abs(joint - Math.log(6)) < 1e-3);
    // Groups [0,1] + [2,3] + [4]: bits 2..4 are not independent of each other, groups (2, 3) split them fine.
    const groups = entropies(z, { groupBits: 2 }).codebook;
    assert.deepEqual(entropyGroups(5, 2), [
      [0, 2],
      [2, 2],
      [4, 1],
    ]);
    assert.ok(groups > joint + 0.5, 'groups that split dependent bits overestimate');
    // A split along the independence: feed channels so groups of 2 cover bits {0,1}, {2,3} with bit 4 ≡ −bit 3.
    const prod2 = a.flatMap((x) =>
      [
        [1, -1],
        [-1, 1],
      ].map((y) => [...x, ...y]),
    );
    const z2 = latents(prod2);
    assert.ok(Math.abs(entropies(z2, { groupBits: 2 }).codebook - entropies(z2, { groupBits: 4 }).codebook) < 1e-4);
    assert.ok(Math.abs(entropies(z2, { groupBits: 4 }).codebook - Math.log(6)) < 1e-3);
  });

  it('sub-groups give an upper bound of the joint entropy, and the per-bit split a looser one', () => {
    const z = latents(randomRows(64, 8, 0.01, 5));
    const joint = entropies(z, { groupBits: 8 }).codebook;
    const halves = entropies(z, { groupBits: 4 }).codebook;
    const bits = entropies(z, { groupBits: 1 }).codebook;
    assert.ok(joint < halves && halves < bits && bits <= 8 * Math.LN2 + 1e-6, `${joint} ${halves} ${bits}`);
    // The per-sample term does not depend on the grouping.
    assert.equal(entropies(z, { groupBits: 8 }).perSample, entropies(z, { groupBits: 1 }).perSample);
  });

  it('default groups keep large vocabularies tractable: 2^18 → two groups of 9 bits', () => {
    assert.equal(defaultGroupBits(10), 10);
    assert.equal(defaultGroupBits(12), 12);
    assert.deepEqual(entropyGroups(18), [
      [0, 9],
      [9, 9],
    ]);
    assert.deepEqual(entropyGroups(14), [
      [0, 7],
      [7, 7],
    ]);
    assert.deepEqual(entropyGroups(25), [
      [0, 9],
      [9, 9],
      [18, 7],
    ]);
    const lfq = new LFQ({ dim: 18 });
    const z = E.tensor(
      new Rng(2).normal(2 * 18 * 64).map((v) => v * 0.01),
      [2, 18, 8, 8],
    );
    const l = E.jit((x: Tensor) => ({ ...lfq.forward(x).losses! }))(z) as Record<string, Tensor>;
    const h = E.item(l.codebookEntropy!);
    assert.ok(h > 0 && h <= 18 * Math.LN2);
  });
});

describe('LFQ gradients and losses', () => {
  it('the straight-through estimator passes the gradient to z unchanged', () => {
    const z = E.tensor(new Rng(9).normal(3 * 4 * 5), [3, 4, 5]);
    const w = E.tensor(new Rng(10).normal(3 * 4 * 5), [3, 4, 5]);
    const g = E.grad((x: Tensor) => E.sum(E.mul(lfqQuantize(x).quantized, w)))(z) as Tensor;
    assert.deepEqual(E.toArray(g), E.toArray(w));
  });

  it('commitment is mean((z − sign z)²) with gradient 2(z − q)/n, no gradient through the codes', () => {
    const vals = [0.5, -0.25, 2, 0, -3, 0.1];
    const z = E.tensor(vals, [1, 2, 3]);
    const q = vals.map((v) => (v > 0 ? 1 : -1));
    const want = vals.reduce((s, v, i) => s + (v - q[i]!) ** 2, 0) / 6;
    const [val, g] = E.valueAndGrad((x: Tensor) => commitmentLoss(x))(z) as [Tensor, Tensor];
    assert.ok(Math.abs(E.item(val) - want) < 1e-6);
    E.toArray(g).forEach((v, i) => {
      assert.ok(Math.abs(v - (2 * (vals[i]! - q[i]!)) / 6) < 1e-6);
    });
  });

  it('entropy gradients match finite differences', () => {
    const z = E.tensor(
      new Rng(12).normal(2 * 4 * 6).map((v) => v * 0.01),
      [2, 4, 6],
    );
    for (const groupBits of [4, 2]) {
      const r = E.gradcheck(
        (x: Tensor) => {
          const t = lfqEntropy(x, { groupBits });
          return E.stack([t.perSample, t.codebook]);
        },
        [z],
        { eps: 2e-4 },
      );
      assert.ok(r.maxError < 1e-2, `groupBits ${groupBits}: ${JSON.stringify(r.checks)}`);
    }
  });

  it('training mode returns the weighted terms; lfqLoss uses codebook 0.1 and commitment 0.25 by default', () => {
    const z = latents(randomRows(16, 6, 0.02, 8));
    const lfq = new LFQ({ dim: 6, sampleWeight: 1, batchWeight: 2 });
    const l = E.jit((x: Tensor) => {
      const losses = lfq.forward(x).losses!;
      return { ...losses, total: lfqLoss(losses) };
    })(z) as Record<string, Tensor>;
    const ent = E.item(l.perSampleEntropy!) - 2 * E.item(l.codebookEntropy!);
    assert.ok(Math.abs(E.item(l.entropy!) - ent) < 1e-5);
    assert.ok(Math.abs(E.item(l.total!) - (0.1 * ent + 0.25 * E.item(l.commitment!))) < 1e-5);
    assert.ok(E.item(l.entropy!) < 0, 'the entropy penalty is normally negative');
  });
});
