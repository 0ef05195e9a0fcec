import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import '../../src/engine/index.js'; // installs the Node backend
import { readGolden, runParity } from '../../src/parity/golden.js';
import '../../src/tokenizers/registry.js';
import { Magvit2Model, parseMagvit2Config } from '../../src/tokenizers/magvit2/index.js';

/**
 * Open-MAGVIT2 (tokenizers and LFQ) and lucidrains' LFQ against the reference's golden vectors: indices and ±1
 * codes exact, floats within 1e-4 relative to the reference's largest magnitude.
 */
const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const golden = (name: string) => resolve(repoRoot, 'test/fixtures/golden', `${name}.safetensors`);

describe('MAGVIT-v2 parity', () => {
  const expected: Record<string, string[]> = {
    magvit2_video: [
      'output.indices',
      'output.indices_t1',
      'output.quantized',
      'output.quantized_t1',
      'output.recon',
      'output.recon_t1',
    ],
    magvit2_image: ['output.indices', 'output.quantized', 'output.recon'],
    lfq_openmagvit2: [
      'output.codebook_entropy',
      'output.commitment',
      'output.entropy_aux_loss',
      'output.indices',
      'output.per_sample_entropy',
      'output.quantized',
      'output.total_aux_loss',
    ],
    lfq_lucidrains: [
      'output.aux_loss',
      'output.batch_entropy',
      'output.entropy_aux_loss',
      'output.indices',
      'output.per_sample_entropy',
      'output.quantized',
      'output.quantized_train',
    ],
  };
  for (const [name, outputs] of Object.entries(expected)) {
    it(`${name}: every output of the golden file matches`, () => {
      const g = readGolden(golden(name));
      const report = runParity(golden(name));
      const failing = report.outputs.filter((o) => !(o.exact ?? o.maxRelError <= 1e-4));
      assert.deepEqual(failing, []);
      assert.ok(report.pass);
      // Every output.* the file holds is produced (nothing silently skipped).
      const golds = [...g.tensors.keys()].filter((k) => k.startsWith('output.')).sort();
      assert.deepEqual(golds, outputs);
      const produced = new Set(report.outputs.map((o) => o.name));
      for (const k of golds) assert.ok(produced.has(k), `${name}: ${k} not produced`);
      // ±1 codes are exact.
      for (const o of report.outputs)
        if (o.name.startsWith('output.quantized') && o.name !== 'output.quantized_train')
          assert.equal(o.maxAbsError, 0, o.name);
    });
  }

  for (const name of ['magvit2_video', 'magvit2_image']) {
    it(`${name}: the module tree has exactly the reference's state_dict names and shapes`, () => {
      const g = readGolden(golden(name));
      const model = new Magvit2Model(parseMagvit2Config(g.config));
      const own = new Map(model.namedParams().map(([k, p]) => [k, p.shape.join('x')]));
      const ref = new Map([...g.params()].map(([k, t]) => [k, t.shape.join('x')]));
      assert.deepEqual([...own.keys()].sort(), [...ref.keys()].sort());
      for (const [k, s] of ref) assert.equal(own.get(k), s, k);
    });
  }

  it('strict loading names a missing key and a mis-shaped one', () => {
    const g = readGolden(golden('magvit2_video'));
    const model = new Magvit2Model(parseMagvit2Config(g.config));
    const params = g.params();
    params.delete('decoder.adaptive.1.gamma.weight');
    assert.throws(() => model.loadStateDict(params), /missing 1 key\(s\): decoder\.adaptive\.1\.gamma\.weight/);
    const other = new Magvit2Model(
      parseMagvit2Config({
        ...g.config,
        ddconfig: { ...(g.config.ddconfig as object), z_channels: 12 },
        embed_dim: 12,
        n_embed: 4096,
      }),
    );
    assert.throws(
      () => other.loadStateDict(g.params()),
      /encoder\.conv_out\.conv_1\.weight: checkpoint has float32\[10,32,1,1,1\], model expects float32\[12,32,1,1,1\]/,
    );
  });
});
