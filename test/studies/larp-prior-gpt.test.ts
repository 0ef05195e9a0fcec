import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { evaluateNll, Gpt, lmLoss, nextTokenBatch, sample, tokenSequences } from '../../src/studies/larp-prior/gpt.js';
import { gptTrainStep, lmBatches } from '../../src/studies/larp-prior/train-gpt.js';
import { IGNORE } from '../../src/nn/index.js';
import { Rng } from '../../src/util/rng.js';

/** The GPT learns: its loss falls on a toy task, it memorises a sequence that greedy sampling then reproduces. */

const tiny = (vocabSize: number, maxLength: number) => new Gpt({ vocabSize, maxLength, layers: 2, heads: 2, dim: 32 });

describe('GPT', () => {
  it('names its parameters like nanoGPT and checks its inputs', () => {
    E.seed(0);
    const m = tiny(11, 8);
    const names = m.namedParams().map(([n]) => n);
    for (const n of [
      'wte.weight',
      'wpe.weight',
      'h.0.ln_1.weight',
      'h.0.attn.qkv.weight',
      'h.1.mlp.fc2.bias',
      'ln_f.weight',
      'lm_head.weight',
    ])
      assert.ok(names.includes(n), n);
    const tied = new Gpt({ vocabSize: 11, maxLength: 8, layers: 1, heads: 2, dim: 16, tied: true });
    assert.ok(!tied.namedParams().some(([n]) => n.startsWith('lm_head')));
    assert.deepEqual([...tied.forward({ ids: E.tensor([1, 2, 3], [1, 3], 'int32') }).shape], [1, 3, 11]);
    assert.throws(() => new Gpt({ vocabSize: 10, maxLength: 8, layers: 1, heads: 3, dim: 16 }), /not divisible/);
    const nine = E.tensor(new Array(9).fill(0), [1, 9], 'int32');
    assert.throws(() => m.forward({ ids: nine }), /exceed the model's maxLength 8/);
    assert.throws(() => evaluateNll(m, tokenSequences([1, 2, 11], 1, 3), { bos: 10 }), /outside the vocabulary/);
  });

  it('is causal: changing a later token leaves earlier logits unchanged', () => {
    E.seed(1);
    const m = tiny(7, 6).eval();
    const a = E.toArray(m.forward({ ids: E.tensor([6, 1, 2, 3, 4, 5], [1, 6], 'int32') }));
    const b = E.toArray(m.forward({ ids: E.tensor([6, 1, 2, 0, 0, 0], [1, 6], 'int32') }));
    const first3 = (x: number[]) => x.slice(0, 3 * 7);
    first3(a).forEach((v, i) => {
      assert.ok(Math.abs(v - first3(b)[i]!) < 1e-5, `logit ${i}`);
    });
    assert.ok(
      a.slice(3 * 7).some((v, i) => Math.abs(v - b[3 * 7 + i]!) > 1e-4),
      'later logits depend on later tokens',
    );
  });

  it('loss falls on a toy task (next = previous + 1 mod V) and validation NLL drops far below uniform', async () => {
    E.seed(2);
    const V = 8,
      L = 8,
      bos = V;
    const rng = new Rng(3);
    const make = (n: number) => {
      const ids: number[] = [];
      for (const s of rng.randint(n, 0, V)) for (let j = 0; j < L; j++) ids.push((s + j) % V);
      return tokenSequences(ids, n, L);
    };
    const train = make(256),
      val = make(64);
    const model = tiny(V + 1, L);
    const before = evaluateNll(model, val, { bos });
    assert.ok(Math.abs(before.nll - Math.log(V + 1)) < 0.3, `untrained NLL ${before.nll} ≈ ln ${V + 1}`);
    const step = gptTrainStep(model, { steps: 150, batchSize: 32, lr: 3e-3 });
    const losses: number[] = [];
    const it = lmBatches(train, 32, bos, 0);
    for (let i = 0; i < 150; i++) losses.push(step.run((await it.next()).value!).loss);
    const after = evaluateNll(model, val, { bos });
    assert.ok(losses[149]! < losses[0]! / 3, `loss ${losses[0]} → ${losses[149]}`);
    // only the first token is uncertain (ln 8 / 8 positions ≈ 0.26 nats per token at best)
    assert.ok(after.nll < 0.6, `validation NLL ${after.nll}`);
    assert.ok(Math.abs(after.bits - after.nll / Math.LN2) < 1e-9);
    assert.ok(
      after.perPosition[0]! > after.perPosition[5]!,
      `position 0 (${after.perPosition[0]}) is the hard one, not ${after.perPosition[5]}`,
    );
  });

  it('greedy sampling (temperature 0) reproduces a memorised sequence; sampling is seeded', () => {
    E.seed(4);
    const V = 12,
      bos = V;
    const target = [3, 7, 1, 1, 9, 0, 4, 11, 2, 5];
    const seqs = tokenSequences(target, 1, target.length);
    const model = tiny(V + 1, target.length);
    const step = gptTrainStep(model, { steps: 120, batchSize: 1, lr: 5e-3, warmup: 5, weightDecay: 0 });
    const b = nextTokenBatch(seqs, [0], bos);
    let loss = Infinity;
    for (let i = 0; i < 120; i++) loss = step.run(b).loss;
    assert.ok(loss < 0.05, `memorisation loss ${loss}`);
    const greedy = sample(model, { count: 3, length: target.length, bos, temperature: 0, suppress: [bos] });
    for (let r = 0; r < 3; r++) assert.deepEqual([...greedy.subarray(r * 10, (r + 1) * 10)], target);
    // a prompt continues the sequence from where it leaves off
    const cont = sample(model, {
      count: 1,
      length: 6,
      bos,
      temperature: 0,
      prompt: { ids: target.slice(0, 4), length: 4 },
    });
    assert.deepEqual([...cont], target.slice(4));
    // high temperature: seeded, reproducible, never a suppressed id
    const s1 = sample(model, { count: 16, length: 10, bos, temperature: 5, suppress: [bos, 3], rng: new Rng(9) });
    const s2 = sample(model, { count: 16, length: 10, bos, temperature: 5, suppress: [bos, 3], rng: new Rng(9) });
    assert.deepEqual(s1, s2);
    assert.ok(!s1.includes(bos) && !s1.includes(3));
    assert.ok(new Set(s1).size > 4, 'temperature 5 spreads the samples');
    assert.throws(() => sample(model, { count: 1, length: 11, bos }), /need a maxLength ≥ 11/);
  });

  it('lmLoss is the mean token cross-entropy of the logits', () => {
    E.seed(5);
    const m = tiny(5, 4).eval();
    const seqs = tokenSequences([0, 1, 2, 3, 3, 2, 1, 0], 2, 4);
    const b = nextTokenBatch(seqs, [0, -1], 4); // a padding row: unscored
    const loss = E.item(lmLoss(m, b.inputs, b.targets));
    const plain = E.item(E.crossEntropy(m.forward({ ids: b.inputs }), b.targets, { ignoreIndex: IGNORE }));
    assert.ok(Math.abs(loss - plain) < 1e-5, `${loss} vs ${plain}`);
    const both = nextTokenBatch(seqs, [0, 1], 4);
    assert.ok(Math.abs(E.item(lmLoss(m, both.inputs, both.targets)) - evaluateNll(m, seqs, { bos: 4 }).nll) < 1e-5);
  });
});
