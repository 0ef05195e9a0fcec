import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { bindParams, headCrossEntropy, IGNORE } from '../../src/nn/index.js';
import {
  benchPrefixLmConfig,
  PrefixLm,
  prefixLmLoss,
  prefixLmParameterCount,
  type PrefixLmConfig,
  type PrefixLmInput,
} from '../../src/generation/prefix-lm/model.js';
import { BuiltinTextEncoder } from '../../src/generation/text/builtin.js';
import { Rng } from '../../src/util/rng.js';

const small: PrefixLmConfig = { vocabSize: 23, dim: 16, layers: 2, heads: 2, hidden: 24, maxLength: 16, textDim: 8 };
const ints = (v: number[], shape: number[]) => E.tensor(v, shape, 'int32');
const randn = (shape: number[], seed: number) =>
  E.tensor(Array.from(new Rng(seed).normal(shape.reduce((a, b) => a * b, 1))), shape);
const rowsOf = (t: Tensor, S: number, V: number) => {
  const a = E.toArray(t);
  return Array.from({ length: S }, (_, i) => a.slice(i * V, (i + 1) * V));
};
const close = (a: number[], b: number[], tol = 1e-5) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

describe('prefix LM', () => {
  it('counts parameters from shapes, matching built models and the bench model (495,496,704)', () => {
    E.seed(0);
    for (const v of [
      {},
      { norm: 'layer', mlp: 'gelu', positions: 'learned', bias: true },
      { textDim: null },
    ] as Partial<PrefixLmConfig>[]) {
      const c = { ...small, ...v };
      assert.equal(new PrefixLm(c).parameterCount(), prefixLmParameterCount(c), JSON.stringify(v));
    }
    assert.equal(prefixLmParameterCount(benchPrefixLmConfig()), 495_496_704);
    const names = new PrefixLm(small).namedParams().map(([n]) => n);
    for (const n of [
      'tok_emb.weight',
      'text_proj.weight',
      'text_proj.bias',
      'blocks.0.attn_norm.weight',
      'blocks.0.attn.wq.weight',
      'blocks.1.mlp.w3.weight',
      'norm.weight',
      'lm_head.weight',
    ])
      assert.ok(names.includes(n), n);
    assert.ok(!names.some((n) => n.startsWith('blocks') && n.endsWith('.bias')));
  });

  it('masks: the prefix is bidirectional and never sees the output; outputs do not see later outputs', () => {
    E.seed(1);
    const m = new PrefixLm({ ...small, textDim: null }).eval();
    const S = 8,
      P = 4,
      V = small.vocabSize;
    const base = [1, 2, 3, 4, 5, 6, 7, 8];
    const logits = (ids: number[]) => rowsOf(m.forward({ ids: ints(ids, [1, S]), prefixLength: ints([P], [1]) }), S, V);
    const a = logits(base);
    const outChanged = logits([1, 2, 3, 4, 5, 9, 7, 8]); // output position 5 changed
    for (let i = 0; i < 5; i++) assert.ok(close(a[i]!, outChanged[i]!), `position ${i} saw a later output`);
    assert.ok(!close(a[6]!, outChanged[6]!, 1e-4), 'position 6 must see position 5');
    const prefixChanged = logits([1, 2, 9, 4, 5, 6, 7, 8]); // prefix position 2 changed
    assert.ok(!close(a[1]!, prefixChanged[1]!, 1e-4), 'prefix position 1 must see prefix position 2');
    // per-row prefix lengths in one batch: row 1 with P = 6 lets position 4 see position 5
    const two = rowsOf(m.forward({ ids: ints([...base, ...base], [2, S]), prefixLength: ints([P, 6], [2]) }), 2 * S, V);
    assert.ok(close(two[4]!, a[4]!) && !close(two[S + 4]!, a[4]!, 1e-4));
  });

  it('scores only output positions (target i = ids[i+1] for i+1 ≥ P), matching a host computation', () => {
    E.seed(2);
    const m = new PrefixLm(small).eval();
    const S = 9,
      V = small.vocabSize,
      lt = 3;
    const ids = [1, 2, 0, 0, 0, 5, 6, 7, 8, 3, 4, 0, 0, 0, 9, 10, 11, 12];
    const x: PrefixLmInput = {
      ids: ints(ids, [2, S]),
      prefixLength: ints([5, 7], [2]),
      text: randn([2, lt, 8], 3),
      textStart: 2,
      textValid: E.tensor([1, 1, 0, 1, 0, 0], [2, lt], 'bool'),
    };
    const lg = rowsOf(m.forward(x), 2 * S, V);
    let sum = 0,
      n = 0;
    for (const [b, P] of [
      [0, 5],
      [1, 7],
    ] as [number, number][]) {
      for (let i = P - 1; i < S - 1; i++) {
        const row = lg[b * S + i]!,
          t = ids[b * S + i + 1]!;
        const mx = Math.max(...row),
          lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
        sum += lse - row[t]!;
        n++;
      }
    }
    assert.ok(Math.abs(E.item(prefixLmLoss(m, x)) - sum / n) < 1e-5);
    assert.ok(Math.abs(E.item(prefixLmLoss(m, x, { scoreFrom: 3 })) - sum / n) < 1e-5);
    // a prefix covering all but the last position scores one target per row
    const lg8 = rowsOf(m.forward({ ...x, prefixLength: ints([8, 8], [2]) }), 2 * S, V);
    const last8 = (b: number) => {
      const row = lg8[b * S + S - 2]!,
        mx = Math.max(...row);
      return mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0)) - row[ids[b * S + S - 1]!]!;
    };
    assert.ok(
      Math.abs(E.item(prefixLmLoss(m, { ...x, prefixLength: ints([8, 8], [2]) })) - (last8(0) + last8(1)) / 2) < 1e-5,
    );
    // invalid text positions are hidden: changing their embeddings changes no other position's logits
    const text2 = E.toArray(x.text!).slice();
    for (let d = 0; d < 8; d++) text2[2 * 8 + d] = 5; // row 0, text position 2 (invalid)
    const lg2 = rowsOf(m.forward({ ...x, text: E.tensor(text2, [2, lt, 8]) }), 2 * S, V);
    for (let i = 0; i < S; i++) if (i !== 4) assert.ok(close(lg[i]!, lg2[i]!), `position ${i} saw an invalid text key`);
  });

  it('trains the built-in text encoder through the LM loss', () => {
    E.seed(4);
    const enc = new BuiltinTextEncoder({ dim: 8, layers: 1, heads: 2, maxTokens: 6 });
    const m = new PrefixLm(small);
    const tok = enc.tokenize(['ab', 'héé']);
    assert.deepEqual([...tok.lengths], [2, 5]);
    assert.throws(() => enc.tokenize(['too long!']), /"too long!" is 9 bytes long; the text encoder takes at most 6/);
    const { ids: tids, valid } = enc.inputs(tok);
    const params = enc.namedParams();
    const f = (w: Tensor[]) =>
      bindParams(
        params.map(([, p]) => p),
        w,
        () =>
          prefixLmLoss(m, {
            ids: ints(
              Array.from({ length: 20 }, (_, i) => (i * 7) % 23),
              [2, 10],
            ),
            prefixLength: ints([8, 8], [2]),
            text: enc.forward(tids, valid),
            textStart: 1,
            textValid: valid,
          }),
      );
    const [loss, grads] = E.valueAndGrad(f)(params.map(([, p]) => p.value)) as [Tensor, Tensor[]];
    assert.ok(Number.isFinite(E.item(loss)));
    const norm = (g: Tensor) => Math.hypot(...E.toArray(g));
    params.forEach(([name], i) => {
      if (name === 'tok_emb.weight' || name.includes('.mlp.fc1') || name.includes('.attn.qkv.weight'))
        assert.ok(norm(grads[i]!) > 0, `no gradient for ${name}`);
    });
  });
  it(
    'the chunked head cross-entropy on scored positions equals ' +
      'the full head over every position, with its gradients',
    () => {
      E.seed(5);
      const m = new PrefixLm(small);
      const S = 9,
        B = 2,
        lt = 3;
      const ids = ints(
        Array.from({ length: B * S }, (_, i) => (i * 5 + 3) % small.vocabSize),
        [B, S],
      );
      const prefixLength = ints([4, 6], [B]),
        text = randn([B, lt, 8], 6);
      const x = (): PrefixLmInput => ({ ids, prefixLength, text, textStart: 1 });
      const params = m.namedParams();
      // the plain computation: logits at every position, targets ids[i+1] where i+1 ≥ P_b
      const full = () => {
        const logits = E.narrow(m.forward(x()), 1, 0, S - 1);
        const t: number[] = [];
        const idv = E.toArray(ids),
          P = [4, 6];
        for (let b = 0; b < B; b++)
          for (let i = 0; i < S - 1; i++) t.push(i + 1 >= P[b]! ? idv[b * S + i + 1]! : IGNORE);
        return E.crossEntropy(logits, E.tensor(t, [B, S - 1], 'int64'), { ignoreIndex: IGNORE });
      };
      const lossGrads = (f: () => Tensor) =>
        E.valueAndGrad((w: Tensor[]) =>
          bindParams(
            params.map(([, p]) => p),
            w,
            f,
          ),
        )(params.map(([, p]) => p.value)) as [Tensor, Tensor[]];
      const [l0, g0] = lossGrads(full);
      // scored rows from position 3 on (2 × 5 rows), head chunks of 3 rows (the last one ragged)
      const [l1, g1] = lossGrads(() => prefixLmLoss(m, x(), { scoreFrom: 3, headChunk: 3 }));
      assert.ok(Math.abs(E.item(l0) - E.item(l1)) < 1e-5, `${E.item(l0)} vs ${E.item(l1)}`);
      params.forEach(([name], i) => {
        const a = E.toArray(g0[i]!),
          b = E.toArray(g1[i]!);
        const scale = Math.max(1e-3, ...a.map(Math.abs));
        a.forEach((v, j) => {
          assert.ok(Math.abs(v - b[j]!) <= 1e-4 * scale, `gradient of ${name}[${j}]: ${v} vs ${b[j]}`);
        });
      });
      // finite differences through the custom backward (ignored rows, several chunks)
      const targets = E.tensor([3, IGNORE, 0, 22, 7, 7, IGNORE], [7], 'int64');
      const r = E.gradcheck(
        (h: Tensor, w: Tensor) => headCrossEntropy(h, w, targets, 3),
        [randn([7, 16], 7), randn([small.vocabSize, 16], 8)],
      );
      assert.ok(r.maxError < 1e-2, `gradcheck error ${r.maxError}`);
      assert.throws(() => headCrossEntropy(randn([7, 16], 7), randn([small.vocabSize, 15], 8), targets), /do not fit/);
    },
  );
});
