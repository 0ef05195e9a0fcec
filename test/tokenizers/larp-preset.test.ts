import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { LarpModel, parseLarpConfig } from '../../src/tokenizers/larp/index.js';
import { sincos3d } from '../../src/tokenizers/larp/sincos.js';
import { larpTrainer } from '../../src/tokenizers/larp/kind.js';

/**
 * The tiny preset's small-scale departures from the reference (config.ts, SMALL_SCALE_NOTES), and that reference
 * configs keep the reference's embeddings.
 */
const tiny = larpTrainer.presets.tiny!;
const tinyConfig = (prior: boolean) =>
  larpTrainer.modelConfig({ ...tiny, model: { ...tiny.model, prior } }, { size: 32, frames: 8, channels: 3 });

/** Largest cosine similarity between two different rows of a [1, n, d] buffer. */
function maxOffDiagonalCosine(buf: E.Tensor): number {
  const [, n, d] = buf.shape as [number, number, number];
  const v = buf.data as Float32Array;
  const row = (i: number) => v.subarray(i * d, (i + 1) * d);
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, k) => s + x * b[k]!, 0);
  let max = -1;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < i; j++)
      max = Math.max(max, dot(row(i), row(j)) / Math.sqrt(dot(row(i), row(i)) * dot(row(j), row(j))));
  return max;
}

describe('LARP tiny preset', () => {
  it(
    'uses the reference query init (0.02), the centred patch ' + 'embedding and routed init, with or without the prior',
    () => {
      for (const prior of [true, false]) {
        const cfg = parseLarpConfig(
          tinyConfig(prior) as Record<string, unknown>,
          tinyConfig(prior).gptc_sizes as never,
        );
        assert.equal(cfg.queryInitStd, 0.02);
        assert.equal(cfg.patchEmbedCenter, 0.5);
        assert.equal(cfg.routedInitGain, 1.5);
        assert.equal(cfg.latentPeScale, 10000);
        assert.equal(cfg.prior !== null, prior);
      }
    },
  );

  it(
    'its decoder patch queries (random, routed init) are further ' +
      'apart than sin-cos ones, and encoder and decoder share them',
    () => {
      const raw = tinyConfig(false) as Record<string, unknown>;
      const tiny = new LarpModel(parseLarpConfig(raw));
      const { routed_init_gain: _, ...refRaw } = raw;
      const ref = new LarpModel(parseLarpConfig(refRaw));
      const tinyMax = maxOffDiagonalCosine(tiny.decoder_patch_query_embed.value);
      const refMax = maxOffDiagonalCosine(ref.decoder_patch_query_embed.value);
      assert.ok(refMax > 0.99, `reference base: ${refMax}`);
      assert.ok(tinyMax < 0.8, `tiny ${tinyMax} vs reference ${refMax}`);
      assert.deepEqual(E.toArray(tiny.encoder_patch_pe.value), E.toArray(tiny.decoder_patch_query_embed.value));
    },
  );

  it(
    'a config without routed_init_gain or patch_pe_scale_factor ' +
      '(reference, golden files) keeps sin-cos base 10000',
    () => {
      const { routed_init_gain: _, ...raw } = tinyConfig(false) as Record<string, unknown>;
      const cfg = parseLarpConfig(raw);
      assert.equal(cfg.patchPeScale, 10000);
      const m = new LarpModel(cfg);
      const expected = Float32Array.from(sincos3d(64, 2, 4, 4));
      assert.deepEqual(Array.from(m.encoder_patch_pe.value.data as Float32Array), Array.from(expected));
      assert.deepEqual(Array.from(m.decoder_patch_query_embed.value.data as Float32Array), Array.from(expected));
    },
  );
});
