import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { tensorsToBytes } from '../../src/nn/index.js';
import { larpTrainer } from '../../src/tokenizers/larp/kind.js';
import { createTokenizer, tokenizerFromBytes } from '../../src/tokenizers/registry.js';
import { Rng } from '../../src/util/rng.js';
import { asyncOnly } from '../engine/async-backend.js';
import { TINY_MAGVIT2_VIDEO, tinyLarp } from './tiny-configs.js';

/**
 * The asynchronous path a browser uses: tokenizers built from a config and weight bytes, encodeAsync/decodeAsync
 * on a backend that has no synchronous run (onnxruntime-node behind a Promise-only interface) give what
 * encode/decode give on the Node backend.
 */
const magvit2Video = TINY_MAGVIT2_VIDEO;
const magvit2Image = { ...magvit2Video, ddconfig: { ...magvit2Video.ddconfig, ch_mult: [1, 1] }, kind: 'image' };
const larp = tinyLarp(6);

// the tiny preset adds what LARP's own initialisation computes with the engine (routed init, centred patch
// embedding), which a model built from bytes skips, and a prior
const larpTiny = larpTrainer.modelConfig(larpTrainer.presets.tiny!, { size: 32, frames: 8, channels: 3 });

const CASES = [
  { name: 'MAGVIT-v2 video', kind: 'magvit2', config: magvit2Video, clip: [2, 3, 5, 8, 8] },
  { name: 'MAGVIT-v2 image', kind: 'magvit2', config: magvit2Image, clip: [2, 3, 2, 8, 8] },
  { name: 'LARP', kind: 'larp', config: larp, clip: [2, 3, 4, 8, 8] },
  { name: 'LARP tiny preset', kind: 'larp', config: larpTiny, clip: [1, 3, 8, 32, 32] },
];

const clips = (shape: number[], seed: number) =>
  E.concrete(
    new Rng(seed).uniform(shape.reduce((a, b) => a * b, 1)).map((v) => 2 * v - 1),
    shape,
    'float32',
  );

function bytesOf(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function assertSame(got: Tensor, want: Tensor, what: string): void {
  assert.equal(got.dtype, want.dtype, what);
  assert.deepEqual(got.shape, want.shape, what);
  assert.deepEqual(E.toArray(got), E.toArray(want), what);
}

describe('the asynchronous path', () => {
  after(() => E.installBackend(E.nodeBackend));

  for (const c of CASES) {
    const title = `${c.name}: built from config + bytes, encodeAsync/decodeAsync without runSync equal encode/decode`;
    it(title, async () => {
      E.seed(7);
      const random = createTokenizer(c.kind, c.config);
      const { tokenizer: tok } = tokenizerFromBytes(
        c.kind,
        c.config,
        bytesOf(tensorsToBytes(random.module.stateDict())),
      );
      const x = clips(c.clip, 1);
      const ids = tok.encode(x);
      // the bytes carried the weights: the same ids as the module they were written from
      random.module.eval();
      assertSame(ids, random.tokenizer.encode(x), 'ids of the tokenizer built from bytes');
      const recon = tok.decode(ids);
      tok.release!();

      const opened = { sessions: 0 };
      E.installBackend(asyncOnly(E.nodeBackend, opened));
      try {
        const idsAsync = await tok.encodeAsync(x);
        assertSame(idsAsync, ids, 'ids');
        assertSame(await tok.decodeAsync(idsAsync), recon, 'reconstruction');
        assert.equal(opened.sessions, 2, 'encode and decode compiled on the asynchronous backend');
        // and those sessions really have no synchronous run
        assert.throws(() => tok.encode(x), /async test backend backend runs asynchronously: use runAsync/);
        if (c.kind === 'larp') {
          // int32 ids are widened on the host (E.cast would be an eager, synchronous run)
          const narrow = E.concrete(Int32Array.from(E.toArray(ids) as number[]), ids.shape, 'int32');
          assertSame(await tok.decodeAsync(narrow), recon, 'reconstruction from int32 ids');
        }
      } finally {
        tok.release!();
        E.installBackend(E.nodeBackend);
      }
    });
  }

  it("jit runAsync gives the call's result (noise inputs included) and is refused inside a trace", async () => {
    const f = E.jit((x: Tensor) => ({ y: E.mul(x, 2), n: E.add(E.randomNormal([3]), x) }), { rng: () => new Rng(5) });
    const x = E.concrete(Float32Array.of(1, 2, 3), [3], 'float32');
    const sync = f(x);
    const viaAsync = await f.runAsync(x);
    assert.deepEqual(E.toArray(viaAsync.y), [2, 4, 6]);
    assert.deepEqual(E.toArray(viaAsync.n), E.toArray(sync.n));
    let inTrace: Promise<unknown> | undefined;
    E.trace(
      (t) => {
        inTrace = f.runAsync(t as Tensor);
        return t;
      },
      [x],
    );
    await assert.rejects(inTrace!, /runAsync inside a trace/);
  });
});
