import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { PrefixLmDecoder } from '../../src/generation/prefix-lm/decoder.js';
import { PrefixLm } from '../../src/generation/prefix-lm/model.js';
import { sample, type OutputStep, type PrefixSequence, type SampleProgress } from '../../src/generation/sampler.js';
import { Rng } from '../../src/util/rng.js';
import { guide } from '../../src/util/sampling.js';

const V = 24;
E.seed(7);
const model = new PrefixLm({
  vocabSize: V,
  dim: 16,
  layers: 2,
  heads: 2,
  hidden: 24,
  maxLength: 64,
  textDim: 8,
}).eval();
// <bos>=20 <task>=21 [text ×3] <res>=22 <bov_o>=23: P = 7, text slot at 2
const prompt = (): PrefixSequence => ({
  ids: Int32Array.of(20, 21, 0, 0, 0, 22, 23),
  prefixLength: 7,
  text: { start: 2, length: 3 },
});
const text = (seed: number) => ({ embeddings: new Rng(seed).normal(3 * 8), valid: Uint8Array.of(1, 1, 0) });
const plan: OutputStep[] = [
  { sample: { lo: 0, hi: 6 }, count: 4 },
  { force: 22 },
  { sample: { lo: 10, hi: 14 }, count: 3 },
  { force: 23 },
];
const base = { prefix: prompt(), text: text(0), plan };

/** Greedy next-token choice from the uncached forward, restricted to [lo, hi). */
function greedyFull(ids: number[], emb: Float32Array, valid: Uint8Array, lo: number, hi: number): number {
  const S = ids.length;
  const lg = E.toArray(
    model.forward({
      ids: E.tensor(ids, [1, S], 'int32'),
      prefixLength: E.tensor([7], [1], 'int32'),
      text: E.concrete(emb, [1, 3, 8], 'float32'),
      textStart: 2,
      textValid: E.concrete(valid, [1, 3], 'bool'),
    }),
  );
  let best = lo;
  for (let j = lo; j < hi; j++) if (lg[(S - 1) * V + j]! > lg[(S - 1) * V + best]!) best = j;
  return best;
}

describe('sampler', () => {
  it('follows the plan: ids only from each segment range, closing ids forced', () => {
    const out = sample(model, { ...base, samples: 5, seed: 1, temperature: 2 });
    assert.equal(out.length, 5 * 9);
    for (let r = 0; r < 5; r++) {
      const row = [...out.subarray(r * 9, r * 9 + 9)];
      for (const t of row.slice(0, 4)) assert.ok(t >= 0 && t < 6, `${t}`);
      assert.equal(row[4], 22);
      for (const t of row.slice(5, 8)) assert.ok(t >= 10 && t < 14, `${t}`);
      assert.equal(row[8], 23);
    }
  });

  it('is seeded and reproducible; samples in one batch differ; top-k 1 and temperature 0 are greedy', () => {
    const a = sample(model, { ...base, samples: 4, seed: 3 }),
      b = sample(model, { ...base, samples: 4, seed: 3 });
    assert.deepEqual([...a], [...b]);
    assert.notDeepEqual([...a], [...sample(model, { ...base, samples: 4, seed: 4 })]);
    const rows = new Set(Array.from({ length: 4 }, (_, r) => a.subarray(r * 9, r * 9 + 9).join()));
    assert.ok(rows.size > 1, 'samples of one batch should differ');
    const greedy = sample(model, { ...base, temperature: 0 });
    assert.deepEqual([...sample(model, { ...base, topK: 1, seed: 9 })], [...greedy]);
    assert.deepEqual([...sample(model, { ...base, topP: 1e-6, seed: 9 })], [...greedy]);
    // greedy decoding with the cache equals greedy choices from the uncached forward
    const t = text(0);
    const ids = [20, 21, 0, 0, 0, 22, 23];
    const ranges = [[0, 6], [0, 6], [0, 6], [0, 6], null, [10, 14], [10, 14], [10, 14], null];
    ranges.forEach((rg, s) => {
      const tok = rg ? greedyFull(ids, t.embeddings, t.valid, rg[0]!, rg[1]!) : greedy[s]!;
      assert.equal(greedy[s], tok, `step ${s}`);
      ids.push(tok);
    });
  });

  it('classifier-free guidance: u + s(c − u) in one batch; scale 1 is the conditional model', () => {
    assert.deepEqual([...sample(model, { ...base, seed: 5, cfgScale: 1 })], [...sample(model, { ...base, seed: 5 })]);
    // greedy first token under guidance = argmax of u + s(c − u) from separate prefills (uncond: text keys hidden)
    const dec = new PrefixLmDecoder(model);
    const t = text(0);
    const pre = (valid: Uint8Array) =>
      dec.prefill({ ids: prompt().ids, batch: 1, text: { embeddings: t.embeddings, length: 3, start: 2, valid } }, 16, {
        lo: 0,
        hi: 6,
      }).logits;
    const g = guide(pre(t.valid).slice(), pre(new Uint8Array(3)), 4);
    const want = g.indexOf(Math.max(...g));
    const got = sample(model, { ...base, cfgScale: 4, temperature: 0, decoder: dec });
    assert.equal(got[0], want);
    assert.equal(dec.compiledPrograms, 4, 'batch 1 and batch 2 (guided) prefill + decode');
    // explicit unconditional prompts are accepted; guidance without a text slot needs them
    const guided = sample(model, { ...base, cfgScale: 2, uncond: prompt(), seed: 2, samples: 2 });
    assert.equal(guided.length, 18);
    assert.throws(
      () => sample(model, { prefix: { ids: Int32Array.of(20, 21), prefixLength: 2, text: null }, plan, cfgScale: 2 }),
      /needs explicit unconditional prompts/,
    );
  });

  it('reports progress with tokens/s and rejects bad plans and prompts', () => {
    const seen: SampleProgress[] = [];
    sample(model, { ...base, samples: 2, onProgress: (p) => seen.push(p) });
    assert.equal(seen.length, 9);
    assert.deepEqual(
      seen.map((p) => p.done),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.ok(seen.every((p) => p.total === 9 && p.tokensPerSecond > 0));
    assert.throws(() => sample(model, { ...base, plan: [{ force: 99 }] }), /forced id 99 is outside the vocabulary/);
    assert.throws(() => sample(model, { ...base, plan: [{ sample: { lo: 5, hi: 5 }, count: 2 }] }), /bad plan step/);
    assert.throws(() => sample(model, { prefix: base.prefix, plan }), /give text embeddings/);
    assert.throws(
      () => sample(model, { ...base, plan: [{ sample: { lo: 0, hi: 6 }, count: 80 }] }),
      /exceed the model's maxLength 64/,
    );
  });
});
