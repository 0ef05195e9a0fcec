import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { decodeAgreement } from '../../src/generation/lm-decoder.js';
import { PrefixLmDecoder } from '../../src/generation/prefix-lm/decoder.js';
import { PrefixLm, type PrefixLmConfig } from '../../src/generation/prefix-lm/model.js';
import { Rng } from '../../src/util/rng.js';

const argmax = (a: Float32Array, r: number, V: number) => {
  let best = 0;
  for (let j = 1; j < V; j++) if (a[r * V + j]! > a[r * V + best]!) best = j;
  return best;
};

function cachedMatchesFull(cfg: PrefixLmConfig, seed: number): void {
  E.seed(seed);
  const m = new PrefixLm(cfg).eval();
  const V = cfg.vocabSize,
    B = 2,
    P = 7,
    N = 9,
    lt = 3,
    start = 2;
  const rng = new Rng(seed);
  const prefix = Int32Array.from(rng.randint(B * P, 0, V));
  const text = rng.normal(B * lt * 8);
  const valid = Uint8Array.of(1, 1, 0, 1, 0, 0);
  const dec = new PrefixLmDecoder(m);
  const range = { lo: 0, hi: V };
  const { cache, logits } = dec.prefill(
    { ids: prefix, batch: B, text: { embeddings: text, length: lt, start, valid } },
    P + N,
    range,
  );
  const kBuffer = cache.k[0];
  const steps = [logits.slice()];
  const gen = new Int32Array(B * N);
  for (let s = 0; s < N; s++) {
    const last = steps[steps.length - 1]!;
    const next = Int32Array.from({ length: B }, (_, r) => argmax(last, r, V));
    next.forEach((t, r) => {
      gen[r * N + s] = t;
    });
    if (s < N - 1) steps.push(dec.step(cache, next, range).slice());
  }
  assert.equal(cache.k[0], kBuffer, 'the cache buffer is written in place');
  assert.equal(dec.compiledPrograms, 2, 'one prefill and one decode program for the whole sequence');
  // the uncached forward over prefix + generated ids
  const S = P + N;
  const ids = new Int32Array(B * S);
  for (let r = 0; r < B; r++) {
    ids.set(prefix.subarray(r * P, (r + 1) * P), r * S);
    ids.set(gen.subarray(r * N, (r + 1) * N), r * S + P);
  }
  const full = E.toArray(
    m.forward({
      ids: E.concrete(ids, [B, S], 'int32'),
      prefixLength: E.tensor([P, P], [2], 'int32'),
      text: E.concrete(text, [B, lt, 8], 'float32'),
      textStart: start,
      textValid: E.concrete(valid, [B, lt], 'bool'),
    }),
  );
  let err = 0;
  steps.forEach((lg, s) => {
    for (let r = 0; r < B; r++)
      for (let j = 0; j < V; j++) err = Math.max(err, Math.abs(lg[r * V + j]! - full[(r * S + P - 1 + s) * V + j]!));
  });
  assert.ok(err <= 1e-4, `cached and uncached logits differ by ${err}`);
  // a logit range reads only those rows of the head
  const { logits: sub } = dec.prefill(
    { ids: prefix, batch: B, text: { embeddings: text, length: lt, start, valid } },
    P + N,
    { lo: 5, hi: 12 },
  );
  for (let r = 0; r < B; r++)
    for (let j = 0; j < 7; j++) assert.ok(Math.abs(sub[r * 7 + j]! - steps[0]![r * V + 5 + j]!) < 1e-5);
  // weights that change between calls (training in between) reach the decode program's transposed copies
  for (const [n, p] of m.namedParams()) {
    if (n.endsWith('.wo.weight') || n === 'lm_head.weight')
      p.value = E.concrete(
        Float32Array.from(E.toArray(p.value), (v) => 1.5 * v),
        p.value.shape,
        'float32',
      );
  }
  const textIn = { embeddings: text, length: lt, start, valid };
  const first = Int32Array.from({ length: B }, (_, r) => gen[r * N]!);
  const again = dec.prefill({ ids: prefix, batch: B, text: textIn }, P + N, range);
  const stepped = dec.step(again.cache, first, range);
  const ids2 = new Int32Array(B * (P + 1));
  for (let r = 0; r < B; r++) {
    ids2.set(prefix.subarray(r * P, (r + 1) * P), r * (P + 1));
    ids2[r * (P + 1) + P] = first[r]!;
  }
  const full2 = E.toArray(
    m.forward({
      ids: E.concrete(ids2, [B, P + 1], 'int32'),
      prefixLength: E.tensor([P, P], [2], 'int32'),
      text: E.concrete(text, [B, lt, 8], 'float32'),
      textStart: start,
      textValid: E.concrete(valid, [B, lt], 'bool'),
    }),
  );
  for (let r = 0; r < B; r++)
    for (let j = 0; j < V; j++)
      assert.ok(
        Math.abs(stepped[r * V + j]! - full2[(r * (P + 1) + P) * V + j]!) <= 1e-4,
        'decode after a weight change',
      );
  dec.step(cache, Int32Array.of(1, 2), range); // the last free position
  assert.throws(() => dec.step(cache, Int32Array.of(1, 2), range), /cache of 16 positions is full/);
  dec.dispose();
}

describe('KV cache', () => {
  it('cached decoding reproduces the full forward over a whole generated sequence (rotary, RMSNorm, SwiGLU)', () => {
    cachedMatchesFull({ vocabSize: 29, dim: 16, layers: 2, heads: 2, hidden: 24, maxLength: 32, textDim: 8 }, 1);
  });
  it('… and with learned positions, LayerNorm, GELU and biases', () => {
    cachedMatchesFull(
      {
        vocabSize: 29,
        dim: 16,
        layers: 2,
        heads: 4,
        hidden: 32,
        maxLength: 32,
        textDim: 8,
        positions: 'learned',
        norm: 'layer',
        mlp: 'gelu',
        bias: true,
      },
      2,
    );
  });
  it('int8 decoding follows float32 decoding over a sequence, and is rebuilt when the weights change', () => {
    E.seed(3);
    const V = 300,
      cfg: PrefixLmConfig = { vocabSize: V, dim: 64, layers: 2, heads: 4, hidden: 128, maxLength: 64, textDim: 16 };
    const m = new PrefixLm(cfg).eval();
    const rng = new Rng(1);
    const B = 2,
      P = 10,
      N = 24,
      range = { lo: 0, hi: 256 };
    const x = {
      ids: Int32Array.from(rng.randint(B * P, 0, V)),
      batch: B,
      text: { embeddings: rng.normal(B * 4 * 16), length: 4, start: 1 },
    };
    const greedy = (l: Float32Array, rows: number, width: number) =>
      Int32Array.from({ length: rows }, (_, r) => argmax(l, r, width));
    const ref = new PrefixLmDecoder(m),
      q = new PrefixLmDecoder(m, { precision: 'int8' });
    const a = decodeAgreement(ref, q, x, N, range, greedy);
    assert.equal(a.compared, B * N);
    // int8 weights change the logits a little (so the program really is quantized), and rarely the top id
    assert.ok(a.maxAbsLogit > 0, 'int8 logits differ from float32 ones');
    let scale = 0;
    for (const v of ref.prefill(x, P + 1, range).logits) scale = Math.max(scale, Math.abs(v));
    assert.ok(a.maxAbsLogit < 0.05 * scale, `max |Δlogit| ${a.maxAbsLogit} vs logits up to ${scale}`);
    assert.ok(a.top1 >= 0.9, `top-1 agreement ${a.top1}`);
    assert.ok(a.meanKl < 1e-4 && a.maxKl < 1e-3, `KL mean ${a.meanKl}, max ${a.maxKl}`);
    assert.equal(q.compiledPrograms, 2, 'one prefill and one int8 decode program');
    // a replaced weight reaches the int8 program (compiled again over the new constants)
    const head = m.lm_head.weight;
    head.value = E.concrete(
      Float32Array.from(E.toArray(head.value), (v) => 3 * v),
      head.value.shape,
      'float32',
    );
    const b = decodeAgreement(ref, q, x, 4, range, greedy);
    assert.ok(b.maxAbsLogit < 0.05 * 3 * scale && b.top1 >= 0.75, `after the weight change: ${JSON.stringify(b)}`);
    assert.equal(q.compiledPrograms, 2);
    assert.throws(() => new PrefixLmDecoder(m, { precision: 'int4' as never }), /precision must be fp32 or int8/);
    ref.dispose();
    q.dispose();
  });
  it('the asynchronous path (prefillAsync, stepAsync) gives exactly the synchronous one, fp32 and int8', async () => {
    E.seed(4);
    const V = 40;
    const cfg: PrefixLmConfig = { vocabSize: V, dim: 32, layers: 2, heads: 2, hidden: 48, maxLength: 32, textDim: 8 };
    const m = new PrefixLm(cfg).eval();
    const rng = new Rng(2);
    const B = 2,
      P = 6,
      N = 5,
      range = { lo: 3, hi: 35 },
      W = range.hi - range.lo;
    const text = { embeddings: rng.normal(B * 3 * 8), length: 3, start: 1, valid: Uint8Array.of(1, 1, 0, 1, 0, 0) };
    const x = { ids: Int32Array.from(rng.randint(B * P, 0, V)), batch: B, text };
    for (const precision of ['fp32', 'int8'] as const) {
      const dec = new PrefixLmDecoder(m, { precision });
      const sync = dec.prefill(x, P + N, range),
        viaAsync = await dec.prefillAsync(x, P + N, range);
      assert.deepEqual(viaAsync.logits, sync.logits, `${precision} prefill logits`);
      assert.deepEqual(viaAsync.cache.k, sync.cache.k);
      assert.deepEqual(viaAsync.cache.valid, sync.cache.valid);
      let next = Int32Array.from({ length: B }, (_, r) => range.lo + argmax(sync.logits, r, W));
      for (let s = 0; s < N; s++) {
        const a = dec.step(sync.cache, next, range),
          b = await dec.stepAsync(viaAsync.cache, next, range);
        assert.deepEqual(b, a, `${precision} step ${s}`);
        next = Int32Array.from({ length: B }, (_, r) => range.lo + argmax(a, r, W));
      }
      assert.equal(viaAsync.cache.length, P + N);
      assert.deepEqual(viaAsync.cache.v, sync.cache.v);
      await assert.rejects(dec.stepAsync(viaAsync.cache, next, range), /cache of 11 positions is full/);
      assert.equal(dec.compiledPrograms, 2, 'both paths share the programs');
      dec.dispose();
    }
  });
});
