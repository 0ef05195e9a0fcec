import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { DecoderLm, IGNORE, nextTokenLoss, type DecoderLmConfig } from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';

const randn = (shape: number[], seed: number) =>
  E.tensor(Array.from(new Rng(seed).normal(shape.reduce((a, b) => a * b, 1))), shape);
const ints = (v: number[], shape: number[]) => E.tensor(v, shape, 'int32');
const maxDiff = (a: Tensor, b: Tensor) => {
  const x = E.toArray(a),
    y = E.toArray(b);
  assert.equal(x.length, y.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
};
/** Rows i of a [1, S, W] tensor, each W wide. */
const row = (t: Tensor, i: number) => E.toArray(E.narrow(t, 1, i, 1));
const same = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-5);

/** LARP's released AR model's shape (Llama-style), at toy size: what the released-models issue will load. */
const llamaStyle: DecoderLmConfig = {
  vocabSize: 20,
  dim: 16,
  layers: 2,
  heads: 2,
  hidden: 24,
  maxLength: 9,
  classes: 4,
  positions: 'learned',
  norm: 'rms',
  mlp: 'swiglu',
  bias: false,
  names: {
    embedding: 'tok_embeddings',
    classes: 'cls_embedding',
    positions: 'pos_embedding',
    blocks: 'layers',
    norm: 'norm',
    head: 'output',
  },
  blockNames: {
    parts: { attention: 'attn', feed_forward: 'mlp', attention_norm: 'norm1', ffn_norm: 'norm2' },
    projections: { wqkv: 'qkv', wo: 'o' },
  },
};

describe('decoder LM shell', () => {
  it('expresses a Llama-style class-conditioned AR model: names, shapes, no biases, the null class last', () => {
    E.seed(0);
    const m = new DecoderLm(llamaStyle).eval();
    const shapes = new Map(m.namedParams().map(([n, p]) => [n, p.shape.join('×')]));
    assert.equal(shapes.get('cls_embedding.weight'), '5×16', 'classes + 1 rows: the last is the null class');
    assert.equal(shapes.get('layers.0.attention.wqkv.weight'), '48×16');
    assert.equal(shapes.get('layers.1.feed_forward.w3.weight'), '24×16');
    assert.equal(shapes.get('pos_embedding.weight'), '9×16');
    const more = ['tok_embeddings.weight', 'layers.0.attention_norm.weight', 'layers.0.ffn_norm.weight', 'norm.weight'];
    for (const n of [...more, 'output.weight']) assert.ok(shapes.has(n), n);
    assert.ok(![...shapes.keys()].some((n) => n.endsWith('.bias')), 'no biases');
    // the class embedding is position 0: logits [B, 1 + S, V]; causal over ids; the class reaches every position
    const ids = [1, 2, 3, 4, 5, 6, 7, 8];
    const run = (v: number[], cls: number) => m.forward({ ids: ints(v, [1, 8]), classIds: ints([cls], [1]) });
    const a = run(ids, 2);
    assert.deepEqual([...a.shape], [1, 9, 20]);
    const later = run([1, 2, 3, 4, 9, 6, 7, 8], 2); // id 4 sits at position 5
    for (let i = 0; i < 5; i++) assert.ok(same(row(a, i), row(later, i)), `position ${i} saw a later id`);
    assert.ok(!same(row(a, 5), row(later, 5)));
    const nullClass = run(ids, 4);
    for (let i = 0; i < 9; i++) assert.ok(!same(row(a, i), row(nullClass, i)), `position ${i} misses the class`);
    assert.throws(() => m.forward({ ids: ints(ids, [1, 8]) }), /class-conditioned: give class ids/);
    assert.throws(
      () => m.forward({ ids: ints([...ids, 1], [1, 9]), classIds: ints([0], [1]) }),
      /10 positions exceed the model's maxLength 9/,
    );
  });

  it('vectors in and out, learned positions as one parameter: positions fed (a decode step) or implied agree', () => {
    E.seed(1);
    const m = new DecoderLm({
      vectorDim: 6,
      dim: 16,
      layers: 2,
      heads: 2,
      hidden: 32,
      maxLength: 8,
      positions: 'learned',
      positionTable: 'parameter',
      norm: 'layer',
      mlp: 'gelu',
      bias: true,
      headBias: true,
      names: { embedding: 'input_proj', norm: 'ln_f', head: 'head' },
    }).eval();
    const outer = m
      .namedParams()
      .map(([n, p]) => `${n}:${p.shape.join('×')}`)
      .filter((n) => !n.startsWith('blocks'));
    assert.deepEqual(outer, [
      'input_proj.weight:16×6',
      'input_proj.bias:16',
      'pos_emb:1×8×16',
      'ln_f.weight:16',
      'ln_f.bias:16',
      'head.weight:6×16',
      'head.bias:6',
    ]);
    const x = randn([2, 5, 6], 2);
    const h = m.embed({ vectors: x });
    const implied = m.run(h, { mask: 'causal' });
    assert.ok(maxDiff(implied, m.run(h, { positions: E.arange(0, 5, 1, 'int64'), mask: 'causal' })) < 1e-6);
    assert.deepEqual([...m.forward({ vectors: x }).shape], [2, 5, 6]);
    // the last position through a KV cache of the first four equals the full pass
    const ks: Tensor[] = [],
      vs: Tensor[] = [];
    m.run(E.narrow(h, 1, 0, 4), {
      mask: 'causal',
      cache: (l) => ({
        keep: (k, v) => {
          ks[l] = k;
          vs[l] = v;
        },
      }),
    });
    const visible = E.cast(E.full([2, 1, 1, 4], 1, 'uint8'), 'bool');
    const step = m.run(E.narrow(h, 1, 4, 1), {
      positions: E.tensor([4], [1], 'int64'),
      mask: 'none',
      cache: (l) => ({ past: { k: ks[l]!, v: vs[l]!, visible } }),
    });
    assert.ok(maxDiff(step, E.narrow(implied, 1, 4, 1)) < 1e-5);
    assert.throws(() => nextTokenLoss(m, implied, ints(new Array(10).fill(0), [2, 5])), /predicts vectors/);
  });

  it('the next-token loss through a tied head is the cross-entropy of its logits, IGNORE unscored', () => {
    E.seed(3);
    const small = { vocabSize: 11, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 6 };
    const m = new DecoderLm({ ...small, tied: true });
    assert.ok(!m.namedParams().some(([n]) => n.startsWith('lm_head')));
    assert.equal(m.headWeight, m.parts.embedding.weight);
    const x = { ids: ints([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1], [2, 6]) };
    const targets = ints([2, 3, IGNORE, 5, 6, 7, 8, 9, 10, 0, IGNORE, IGNORE], [2, 6]);
    const plain = E.item(E.crossEntropy(m.forward(x), targets, { ignoreIndex: IGNORE }));
    const h = m.hidden(x);
    assert.ok(Math.abs(E.item(nextTokenLoss(m, h, targets, { chunk: 5 })) - plain) < 1e-5);
    const rows = nextTokenLoss(m, h, targets, { reduction: 'none' });
    assert.deepEqual([...rows.shape], [2, 6]);
    assert.deepEqual(
      [2, 10, 11].map((i) => E.toArray(rows)[i]),
      [0, 0, 0],
    );
    const biased = new DecoderLm({ ...small, headBias: true });
    assert.throws(() => nextTokenLoss(biased, biased.hidden(x), targets), /the head has a bias/);
  });

  it('refuses configs it cannot build', () => {
    const base = { dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 6 };
    assert.throws(() => new DecoderLm({ ...base, vocabSize: 5, vectorDim: 3 }), /exactly one of vocabSize/);
    assert.throws(() => new DecoderLm({ ...base, vocabSize: 5, heads: 3 }), /not divisible by 3 heads/);
    assert.throws(() => new DecoderLm({ ...base, vocabSize: 5, dim: 18, heads: 2 }), /even head width, got 9/);
    assert.throws(() => new DecoderLm({ ...base, vectorDim: 5, tied: true }), /tied head needs a token embedding/);
    assert.throws(() => new DecoderLm({ ...base, vocabSize: 5, names: { head: 'forward' } }), /"forward" is taken/);
    assert.throws(() => new DecoderLm({ ...base, vocabSize: 5, names: { head: 'blocks' } }), /"blocks" is taken/);
    const prefix = new DecoderLm({ ...base, vocabSize: 5, mask: 'prefix' });
    assert.throws(() => prefix.forward({ ids: ints([1, 2], [1, 2]) }), /needs prefixLength/);
  });
});
