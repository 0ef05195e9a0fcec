import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { bindParams, Param } from '../../src/nn/index.js';
import { l2Normalize, StochasticVQ } from '../../src/quantizers/svq.js';
import { Rng } from '../../src/util/rng.js';

/** Stochastic cosine VQ: argmax when deterministic, softmax(cos/τ) sampling, straight-through gradients. */

function vq(k: number, d: number, temperature = 0.03): StochasticVQ {
  return new StochasticVQ({ codebookSize: k, dim: d, temperature, commitmentLossWeight: 0.25, codebookLossWeight: 1 });
}

function cosines(z: number[], emb: number[], k: number, d: number): number[] {
  const nz = Math.hypot(...z);
  return Array.from({ length: k }, (_, j) => {
    const row = emb.slice(j * d, (j + 1) * d);
    return row.reduce((s, v, i) => s + v * z[i]!, 0) / (nz * Math.hypot(...row));
  });
}

describe('StochasticVQ', () => {
  it('deterministic eval mode takes the argmax cosine and returns normalised codebook rows', () => {
    E.seed(1);
    const q = vq(32, 8).eval();
    q.deterministic = true;
    const rng = new Rng(2);
    const z = E.concrete(rng.normal(2 * 5 * 8), [2, 5, 8], 'float32');
    const out = E.jit((x: Tensor) => {
      const o = q.forward(x);
      return [o.indices, o.regularized_z, o.lossCommit, o.lossCodebook, o.lossQ];
    })(z) as Tensor[];
    const emb = E.toArray(q.embedding.weight.value),
      zs = E.toArray(z),
      idx = E.toArray(out[0]!);
    const codebook = E.toArray(q.codebook());
    let sq = 0;
    for (let r = 0; r < 10; r++) {
      const cos = cosines(zs.slice(r * 8, r * 8 + 8), emb, 32, 8);
      assert.equal(idx[r], cos.indexOf(Math.max(...cos)));
      const zn = Math.hypot(...zs.slice(r * 8, r * 8 + 8));
      for (let i = 0; i < 8; i++) {
        const code = codebook[idx[r]! * 8 + i]!;
        assert.ok(Math.abs(E.toArray(out[1]!)[r * 8 + i]! - code) < 1e-6);
        sq += (code - zs[r * 8 + i]! / zn) ** 2;
      }
    }
    const mse = sq / 80;
    assert.ok(Math.abs(E.item(out[2]!) - mse) < 1e-6 && Math.abs(E.item(out[3]!) - mse) < 1e-6);
    assert.ok(Math.abs(E.item(out[4]!) - 1.25 * mse) < 1e-6);
  });

  it('training mode samples codes with frequencies softmax(cos/τ), fresh noise per call', () => {
    E.seed(3);
    const k = 4,
      d = 4,
      tau = 0.25,
      n = 6000;
    const q = vq(k, d, tau).train();
    q.embedding.weight = new Param(E.tensor([1, 0, 0, 0, 0.8, 0.6, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0], [k, d]));
    const z = E.broadcastTo(E.tensor([1, 0.2, 0, 0], [1, 1, d]), [1, n, d]);
    const enc = E.jit((x: Tensor) => q.forward(x).indices);
    const a = E.toArray(enc(z)),
      b = E.toArray(enc(z));
    const cos = cosines([1, 0.2, 0, 0], E.toArray(q.embedding.weight.value), k, d);
    const ex = cos.map((c) => Math.exp(c / tau)),
      total = ex.reduce((s, v) => s + v);
    for (let j = 0; j < k; j++) {
      const freq = a.filter((v) => v === j).length / n;
      assert.ok(Math.abs(freq - ex[j]! / total) < 0.02, `code ${j}: ${freq} vs ${ex[j]! / total}`);
    }
    assert.notDeepEqual(a, b, 'each call draws new noise');
    // deterministic only matters outside training
    q.deterministic = true;
    assert.ok(new Set(E.toArray(E.jit((x: Tensor) => q.forward(x).indices)(z))).size > 1);
  });

  it('straight-through: the codes carry the gradient of z; the codebook learns only through its loss', () => {
    E.seed(5);
    const q = vq(16, 6).eval();
    q.deterministic = true;
    const rng = new Rng(6);
    const x = E.concrete(rng.normal(3 * 6), [1, 3, 6], 'float32');
    const w = E.concrete(rng.normal(3 * 6), [1, 3, 6], 'float32');
    const cb = q.embedding.weight;
    const stGrad = E.valueAndGrad(
      (p: Tensor, table: Tensor) => bindParams([cb], [table], () => E.sum(E.mul(q.forward(p).regularized_z, w))),
      { argnums: [0, 1] },
    );
    const direct = E.grad((p: Tensor) => E.sum(E.mul(l2Normalize(p), w)));
    const [, [gx, gcb]] = stGrad(x, cb.value) as [Tensor, Tensor[]];
    const want = E.toArray(direct(x) as Tensor);
    E.toArray(gx!).forEach((v, i) => {
      assert.ok(Math.abs(v - want[i]!) < 1e-5);
    });
    assert.ok(
      E.toArray(gcb!).every((v) => v === 0),
      'no gradient into the codebook through the straight-through path',
    );
    // the codebook loss moves exactly the selected rows
    const [o] = E.jit((p: Tensor) => [q.forward(p).indices])(x) as Tensor[];
    const chosen = new Set(E.toArray(o!));
    const g = E.grad((table: Tensor) => bindParams([cb], [table], () => q.forward(x).lossCodebook))(cb.value) as Tensor;
    const ga = E.toArray(g);
    for (let r = 0; r < 16; r++) {
      const moved = ga.slice(r * 6, r * 6 + 6).some((v) => v !== 0);
      assert.equal(moved, chosen.has(r), `row ${r}`);
    }
  });

  it(
    'warm-up blend: α = 0 passes the normalised latent, α = 1 the code, ' +
      'α between them linearly, gradient straight-through throughout',
    () => {
      E.seed(7);
      const q = vq(16, 6).eval();
      q.deterministic = true;
      const rng = new Rng(8);
      const x = E.concrete(rng.normal(2 * 3 * 6), [2, 3, 6], 'float32');
      const w = E.concrete(rng.normal(2 * 3 * 6), [2, 3, 6], 'float32');
      const at = (a: number) =>
        E.toArray(E.jit((p: Tensor) => [q.forward(p, E.scalar(a)).regularized_z])(x)[0] as Tensor);
      const [z0, code] = E.jit((p: Tensor) => {
        const o = q.forward(p);
        return [o.unregularized_z, o.regularized_z];
      })(x) as Tensor[];
      const zs = E.toArray(z0!),
        cs = E.toArray(code!);
      const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        Array.from(a).forEach((v, i) => {
          assert.ok(Math.abs(v - b[i]!) < 1e-6, `${v} vs ${b[i]}`);
        });
      };
      close(at(0), zs);
      close(at(1), cs);
      close(
        at(0.25),
        zs.map((v, i) => v + 0.25 * (cs[i]! - v)),
      );
      assert.ok(
        zs.some((v, i) => Math.abs(v - cs[i]!) > 1e-2),
        'the codes differ from the latent, so the checks above could fail',
      );
      // the commitment term ramps with α; the codebook term does not
      const losses = (a: number) =>
        (
          E.jit((p: Tensor) => {
            const o = q.forward(p, E.scalar(a));
            return [o.lossQ, o.lossCommit, o.lossCodebook];
          })(x) as Tensor[]
        ).map((t) => E.toArray(t)[0]!);
      const [lq, commit, codebook] = losses(0.25) as [number, number, number];
      assert.ok(commit > 1e-3);
      assert.ok(
        Math.abs(lq - (0.25 * q.cfg.commitmentLossWeight * commit + q.cfg.codebookLossWeight * codebook)) < 1e-6,
        `${lq}`,
      );
      assert.ok(Math.abs(losses(0)[0]! - q.cfg.codebookLossWeight * codebook) < 1e-6);
      const g = E.grad((p: Tensor) => E.sum(E.mul(q.forward(p, E.scalar(0.5)).regularized_z, w)))(x) as Tensor;
      close(E.toArray(g), E.toArray(E.grad((p: Tensor) => E.sum(E.mul(l2Normalize(p), w)))(x) as Tensor));
    },
  );
});
