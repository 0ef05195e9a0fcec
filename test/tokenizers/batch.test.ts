import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import type { ClipTensor } from '../../src/io/frame.js';
import { decodeTokens, encodeClips, idsToHost } from '../../src/tokenizers/batch.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

/**
 * A tokenizer whose ids are each clip's rounded first values (grid [2]) and whose decode fills a clip with its
 * first id; it records the batch sizes and id dtypes it saw.
 */
function probe() {
  const seen = { encode: [] as number[], decode: [] as string[] };
  const tok: Tokenizer = {
    kind: 'probe',
    modality: 'video',
    config: {},
    vocabBits: 8,
    vocabSize: 256,
    clipFrames: 1,
    grid: () => ({ shape: [2] }),
    encode(x: Tensor) {
      const [n, ...clip] = x.shape as [number, ...number[]],
        per = clip.reduce((a, b) => a * b, 1);
      seen.encode.push(n);
      const d = x.data as Float32Array;
      return E.concrete(
        BigInt64Array.from({ length: 2 * n }, (_, i) =>
          BigInt(Math.round(d[Math.floor(i / 2) * per + (i % 2)]! * 100)),
        ),
        [n, 2],
        'int64',
      );
    },
    decode(ids: Tensor) {
      seen.decode.push(`${ids.dtype}[${ids.shape}]`);
      const n = ids.shape[0]!,
        v = ids.data as BigInt64Array;
      return E.concrete(
        Float32Array.from({ length: n * 4 }, (_, i) => Number(v[Math.floor(i / 4) * 2])),
        [n, 1, 1, 2, 2],
        'float32',
      );
    },
    encodeAsync: async (x: Tensor) => tok.encode(x),
    decodeAsync: async (ids: Tensor) => tok.decode(ids),
  };
  return { tok, seen };
}

describe('batched encode/decode', () => {
  const n = 5;
  const clips = {
    data: Float32Array.from({ length: n * 4 }, (_, i) => (i % 4 < 2 ? (Math.floor(i / 4) * 2 + (i % 4)) / 100 : 0)),
    shape: [n, 1, 1, 2, 2] as ClipTensor['shape'],
  };

  it('encodes in equal batches (the last padded) to host Int32 ids in clip order', () => {
    const { tok, seen } = probe();
    const t = encodeClips(tok, clips, 2);
    assert.deepEqual(seen.encode, [2, 2, 2]);
    assert.ok(t.ids instanceof Int32Array);
    assert.deepEqual([...t.ids], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual([t.n, t.grid], [5, [2]]);
  });

  it('decodes host ids as int64 in equal batches, trimmed to the clips asked for', () => {
    const { tok, seen } = probe();
    const t = encodeClips(tok, clips, 4);
    const back = decodeTokens(tok, t, 3);
    assert.deepEqual(seen.decode, ['int64[3,2]', 'int64[3,2]']);
    assert.deepEqual(back.shape, [5, 1, 1, 2, 2]);
    assert.deepEqual(
      [...back.data].filter((_, i) => i % 4 === 0),
      [0, 2, 4, 6, 8],
    );
  });

  it('bad input is named', () => {
    const { tok } = probe();
    assert.throws(
      () => encodeClips(tok, { data: new Float32Array(4), shape: [1, 2, 2] as never }),
      /expected clips N×C×T×H×W, got \[1,2,2\]/,
    );
    assert.throws(
      () => decodeTokens(tok, { ids: new Int32Array(3), n: 2, grid: [2] }),
      /3 ids for 2 clips of grid \[2\]/,
    );
    assert.throws(() => idsToHost(E.zeros([2])), /token ids must be int32 or int64, got float32/);
  });
});
