import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeTokens, encodeTokens, readCodedTokens, writeCodedTokens } from '../../src/codec/container.js';
import { BitModels, RangeDecoder, RangeEncoder } from '../../src/codec/range-coder.js';
import { TOKEN_MODELS } from '../../src/codec/token-model.js';
import { SeededRng } from '../../src/data/seeded.js';
import { hashConfig, packIds, type TokenFileHeader } from '../../src/io/tokenfile.js';
import { VtokError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vtok-codec-'));

function header(vocabSize: number, grid: number[]): TokenFileHeader {
  return {
    kind: 'magvit2',
    configHash: hashConfig({ vocabSize }),
    vocabSize,
    grid,
    modality: 'video',
    source: { fps: 8, frameSize: [128, 128] },
    extra: { model: 'x' },
  };
}

/** Ids like an LFQ tokenizer's on smooth video: each bit is the sign of a smooth field, so neighbours agree. */
function smoothIds(grid: [number, number, number], bits: number, seed: number): Int32Array {
  const rng = new SeededRng(seed);
  const [T, H, W] = grid;
  const ids = new Int32Array(T * H * W);
  for (let b = 0; b < bits; b++) {
    const fx = rng.uniform(0.1, 0.6),
      fy = rng.uniform(0.1, 0.6),
      ft = rng.uniform(0, 0.3),
      ph = rng.uniform(0, 6);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const flip = rng.next() < 0.05;
          const bit = Math.sin(fx * w + fy * h + ft * t + ph) > 0 !== flip ? 1 : 0;
          ids[(t * H + h) * W + w]! |= bit << b;
        }
  }
  return ids;
}

test('range coder: random bits under skewed and fair models round-trip, and skewed ones compress', () => {
  const rng = new SeededRng(3);
  const models = new BitModels(4);
  const enc = new RangeEncoder();
  const bits: [number, number][] = [];
  for (let i = 0; i < 20000; i++) {
    const ctx = i % 4;
    const p1 = [0.02, 0.5, 0.9, 0.3][ctx]!;
    const bit = rng.next() < p1 ? 1 : 0;
    bits.push([ctx, bit]);
    enc.encode(models, ctx, bit);
  }
  const bytes = enc.finish();
  const dec = new RangeDecoder(bytes);
  const m2 = new BitModels(4);
  for (const [ctx, bit] of bits) assert.equal(dec.decode(m2, ctx), bit);
  // entropy of the source: mean of H(0.02), H(0.5), H(0.9), H(0.3) ≈ 0.589 bits; adaptive coding stays within 3 %
  const H = (p: number) => -(p * Math.log2(p) + (1 - p) * Math.log2(1 - p));
  const ideal = (20000 / 4) * (H(0.02) + H(0.5) + H(0.9) + H(0.3));
  assert.ok(bytes.length * 8 < ideal * 1.03, `${bytes.length * 8} bits for an ideal ${ideal.toFixed(0)}`);
});

for (const model of TOKEN_MODELS) {
  test(`container (${model}): lossless round trip of several clips, 18-bit and non-power-of-two vocabularies`, () => {
    for (const [vocab, grid] of [
      [2 ** 18, [5, 16, 16]],
      [1000, [3, 4, 5]],
      [2, [7]],
      [1024, [4, 6]],
    ] as [number, number[]][]) {
      const rng = new SeededRng(vocab);
      const clips = [0, 1, 2].map(() => ({
        grid,
        ids: Int32Array.from({ length: grid.reduce((a, b) => a * b, 1) }, () => rng.int(vocab)),
      }));
      const bytes = encodeTokens(header(vocab, grid), clips, model);
      const back = decodeTokens(bytes);
      assert.equal(back.model, model);
      assert.deepEqual(back.header, header(vocab, grid));
      assert.equal(back.clips.length, 3);
      back.clips.forEach((c, i) => {
        assert.deepEqual(c.grid, grid);
        assert.deepEqual(c.ids, clips[i]!.ids);
      });
    }
  });
}

test('container: smooth LFQ-like ids code below their bit-packed size, the context model best', () => {
  const grid: [number, number, number] = [5, 16, 16];
  const clips = [1, 2, 3, 4].map((s) => ({ grid: [...grid], ids: smoothIds(grid, 18, s) }));
  const packed = clips.reduce((a, c) => a + packIds(c.ids, 18).length, 0);
  const freq = encodeTokens(header(2 ** 18, [...grid]), clips, 'frequency').length;
  const ctx = encodeTokens(header(2 ** 18, [...grid]), clips, 'context').length;
  assert.ok(ctx < 0.6 * packed, `context model ${ctx} bytes vs ${packed} bit-packed`);
  assert.ok(ctx < freq, `context ${ctx} < frequency ${freq}`);
  // uniformly random ids cannot be compressed; the adaptive model costs little on them
  const rng = new SeededRng(9);
  const noise = [{ grid: [...grid], ids: Int32Array.from({ length: 1280 }, () => rng.int(2 ** 18)) }];
  const n = encodeTokens(header(2 ** 18, [...grid]), noise, 'context').length;
  assert.ok(n < 1.03 * packIds(noise[0]!.ids, 18).length + 600, `random ids: ${n} bytes`);
});

test('container: files are written atomically and read back', () => {
  const path = join(dir, 'a.vtkc');
  const clips = [{ grid: [2, 3, 4], ids: Int32Array.from({ length: 24 }, (_, i) => i * 37) }];
  const n = writeCodedTokens(path, header(1024, [2, 3, 4]), clips);
  assert.equal(readFileSync(path).length, n);
  assert.deepEqual(readCodedTokens(path).clips[0]!.ids, clips[0]!.ids);
});

test('container: damaged, truncated, foreign and future-version files each get a clear error', () => {
  const clips = [{ grid: [5, 16, 16], ids: smoothIds([5, 16, 16], 18, 7) }];
  const good = encodeTokens(header(2 ** 18, [5, 16, 16]), clips);
  const path = join(dir, 'bad.vtkc');
  const expect = (bytes: Uint8Array, re: RegExp) => {
    writeFileSync(path, bytes);
    assert.throws(
      () => readCodedTokens(path),
      (e: unknown) => e instanceof VtokError && re.test(e.message) && e.message.includes(path),
    );
  };
  expect(good.subarray(0, 6), /too short/);
  expect(good.subarray(0, good.length - 10), /truncated/);
  expect(good.subarray(0, 40), /truncated/);
  const flipped = Uint8Array.from(good);
  flipped[good.length - 20]! ^= 0x10;
  expect(flipped, /checksum/);
  const magic = Uint8Array.from(good);
  magic[0] = 0x41;
  expect(magic, /not a vtok codec file/);
  const future = Uint8Array.from(good);
  future[4] = 9;
  expect(future, /version 9 is not supported/);
  expect(new Uint8Array([...good, 1, 2]), /stray bytes/);
  assert.throws(() => readCodedTokens(join(dir, 'missing.vtkc')), /cannot read \(ENOENT\)/);
  assert.throws(
    () => encodeTokens(header(1000, [2]), [{ grid: [2], ids: Int32Array.from([5, 1000]) }]),
    /outside the vocabulary/,
  );
  assert.throws(() => encodeTokens(header(1000, [2]), [{ grid: [3], ids: Int32Array.from([5, 10]) }]), /holds 3/);
});
