import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import {
  andMasks,
  applyRotary,
  attend,
  keyPaddingMask,
  MultiHeadAttention,
  prefixLmMask,
  rotaryTables,
  TransformerBlock,
  windowMask,
} from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';

const randn = (shape: number[], seed: number) =>
  E.tensor(Array.from(new Rng(seed).normal(shape.reduce((a, b) => a * b, 1))), shape);
const maxDiff = (a: Tensor, b: Tensor) => {
  const x = E.toArray(a),
    y = E.toArray(b);
  assert.equal(x.length, y.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
};
const bools = (t: Tensor) => E.toArray(E.cast(t, 'float32'));

describe('shared transformer', () => {
  it('builds prefix-LM, key-padding and window masks', () => {
    // two rows with prefix lengths 2 and 0 over 4 positions
    const m = bools(prefixLmMask(E.tensor([2, 0], [2], 'int32'), 4));
    const row0 = [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
    const row1 = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
    assert.deepEqual(m, [...row0, ...row1]);
    const pad = andMasks(
      [prefixLmMask(E.tensor([4], [1], 'int32'), 4), keyPaddingMask(E.tensor([1, 0, 1, 1], [1, 4], 'bool'))],
      4,
      4,
    );
    assert.deepEqual(bools(pad as Tensor), [1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1]);
    // 2×3 grid (t, w): a window of 2 along t sees the same w in this and the previous frame only (causal)
    const w = bools(windowMask([2, 3], { axis: 0, size: 2, causal: true }));
    const sees = (i: number) => w.slice(i * 6, i * 6 + 6).flatMap((v, j) => (v ? [j] : []));
    assert.deepEqual(sees(0), [0]);
    assert.deepEqual(sees(4), [1, 4]);
    const w1 = bools(windowMask([2, 3], { axis: 1, size: 2 }));
    assert.deepEqual(w1.slice(4 * 6, 5 * 6), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(w1.slice(3 * 6, 4 * 6), [0, 0, 0, 1, 1, 0]);
  });

  it('rotary positions rotate pairs: norms kept, scores depend on the offset only', () => {
    const hd = 8;
    const x = randn([1, 1, 5, hd], 1);
    const r = rotaryTables(E.arange(0, 5, 1, 'int32'), hd);
    const y = applyRotary(x, r);
    const norms = (t: Tensor) => {
      const a = E.toArray(t);
      return Array.from({ length: 5 }, (_, i) => Math.hypot(...a.slice(i * hd, (i + 1) * hd)));
    };
    norms(x).forEach((n, i) => {
      assert.ok(Math.abs(n - norms(y)[i]!) < 1e-5);
    });
    // q at position p, k at position p-2: the score is the same for p = 2 and p = 4
    const q = randn([1, 1, 1, hd], 2),
      k = randn([1, 1, 1, hd], 3);
    const at = (t: Tensor, p: number) => applyRotary(t, rotaryTables(E.tensor([p], [1], 'int32'), hd));
    const s = (p: number) => E.item(E.sum(E.mul(at(q, p), at(k, p - 2))));
    assert.ok(Math.abs(s(2) - s(4)) < 1e-5 && Math.abs(s(2) - E.item(E.sum(E.mul(q, k)))) > 1e-3);
  });

  it('attention over [past ; new] equals attention over the concatenated keys', () => {
    const q = randn([2, 3, 2, 4], 4),
      kp = randn([2, 3, 5, 4], 5),
      vp = randn([2, 3, 5, 4], 6);
    const kn = randn([2, 3, 2, 4], 7),
      vn = randn([2, 3, 2, 4], 8);
    // past keys 3 and 4 are not filled yet (hidden); the new keys are causal among themselves
    const visible = E.tensor([1, 1, 1, 0, 0], [1, 1, 1, 5], 'bool');
    const split = attend(q, kn, vn, 'causal', { k: kp, v: vp, visible });
    const fullMask = E.tensor([1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1], [2, 7], 'bool');
    const full = E.attention(q, E.concat([kp, kn], 2), E.concat([vp, vn], 2), { mask: fullMask });
    assert.ok(maxDiff(split, full) < 1e-5);
  });

  it('keeps parameter names per model and gradients check for a cross-attention RMSNorm SwiGLU block', () => {
    E.seed(3);
    const blk = new TransformerBlock({
      dim: 8,
      heads: 2,
      norm: 'rms',
      attention: { projections: { wq: 'q', wk: 'k', wv: 'v', wo: 'o' }, qkvBias: false, outBias: false },
      mlp: { kind: 'swiglu', hidden: 12, bias: false },
      cross: { kvDim: 6 },
    });
    assert.deepEqual(
      blk.namedParams().map(([n]) => n),
      [
        'norm1.weight',
        'attn.wq.weight',
        'attn.wk.weight',
        'attn.wv.weight',
        'attn.wo.weight',
        'norm2.weight',
        'mlp.w1.weight',
        'mlp.w3.weight',
        'mlp.w2.weight',
        'normCross.weight',
        'cross.q.weight',
        'cross.q.bias',
        'cross.kv.weight',
        'cross.kv.bias',
        'cross.o.weight',
        'cross.o.bias',
      ],
    );
    const x = randn([1, 3, 8], 9),
      ctx = randn([1, 2, 6], 10);
    const rope = rotaryTables(E.arange(0, 3, 1, 'int32'), 4);
    const r = E.gradcheck(
      (a: Tensor, c: Tensor) => blk.forward(a, { mask: 'causal', rope, crossContext: c }),
      [x, ctx],
    );
    assert.ok(r.maxError < 2e-2, `gradcheck error ${r.maxError}`);
  });

  it('hands the keys and values to a cache callback and refuses a block without an output projection', () => {
    const attn = new MultiHeadAttention({ dim: 8, heads: 2 });
    let kept: Tensor[] = [];
    attn.forward(randn([1, 3, 8], 11), { cache: { keep: (k, v) => (kept = [k, v]) } });
    assert.deepEqual([...kept[0]!.shape], [1, 2, 3, 4]);
    assert.throws(() => new MultiHeadAttention({ dim: 8, heads: 2, projections: { qkv: 'qkv' } }), /output projection/);
  });
});
