import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { readGolden, runParity } from '../../src/parity/golden.js';
import '../../src/tokenizers/registry.js';
import { LarpModel, parseLarpConfig } from '../../src/tokenizers/larp/index.js';

/** LARP against the reference's golden vectors (hywang66/LARP): indices exact, floats within 1e-4 relative. */
const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const golden = (name: string) => resolve(repoRoot, 'test/fixtures/golden', `${name}.safetensors`);

describe('LARP parity', () => {
  for (const name of ['larp_tokenizer', 'larp_prior']) {
    it(`${name}: every output matches the reference`, () => {
      const report = runParity(golden(name));
      const failing = report.outputs.filter((o) => !(o.exact ?? o.maxRelError <= 1e-4));
      assert.deepEqual(failing, []);
      assert.ok(report.pass);
      assert.ok(report.outputs.length >= 5);
    });
  }

  it('builds the exact state_dict names and computes the stored sin-cos buffers', () => {
    const g = readGolden(golden('larp_prior'));
    const model = new LarpModel(parseLarpConfig(g.config, JSON.parse(g.metadata.gptc_size!)));
    const own = new Map(model.namedParams());
    assert.deepEqual([...own.keys()].sort(), [...g.params().keys()].sort());
    for (const k of ['encoder_patch_pe', 'decoder_latent_pe', 'decoder_patch_query_embed']) {
      const a = E.toArray(own.get(k)!.value),
        b = E.toArray(g.params().get(k)!);
      assert.equal(a.length, b.length, k);
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]!) <= 1e-6),
        `${k} differs from the reference buffer`,
      );
      assert.equal(own.get(k)!.trainable, false, `${k} is a buffer`);
    }
  });
});
