import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { Linear } from '../../src/nn/index.js';
import { parityCases } from '../../src/parity/index.js';
import type { Preset } from '../../src/tokenizers/kind.js';
import { larpTrainer, type LarpModelOptions } from '../../src/tokenizers/larp/kind.js';
import type { Magvit2ModelOptions } from '../../src/tokenizers/magvit2/kind.js';
import {
  createTokenizer,
  registerTokenizerKind,
  tokenizerKind,
  tokenizerKinds,
  trainerFor,
  trainerOptions,
  trainingPreset,
} from '../../src/tokenizers/registry.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

describe('tokenizer kinds registry', () => {
  it('holds every kind with its presets and parity cases', () => {
    assert.deepEqual(tokenizerKinds().slice(0, 2), ['magvit2', 'larp']);
    assert.deepEqual(
      parityCases()
        .filter((c) => !c.startsWith('probe'))
        .sort(),
      ['larp_prior', 'larp_tokenizer', 'lfq_lucidrains', 'lfq_openmagvit2', 'magvit2_image', 'magvit2_video'],
    );
    assert.ok(trainerFor('larp').presets.tiny && trainerFor('magvit2').presets.micro);
    assert.throws(() => tokenizerKind('nope'), /unknown tokenizer kind "nope" \(known: magvit2, larp/);
  });

  it('a new kind plugs in by registering one object', () => {
    const module = new Linear(1, 1);
    const tok = {
      kind: 'probe',
      modality: 'audio',
      config: {},
      vocabBits: 1,
      vocabSize: 2,
      clipFrames: 1,
      grid: () => ({ shape: [1] }),
      encode: (x) => x,
      decode: (x) => x,
      encodeAsync: async (x) => x,
      decodeAsync: async (x) => x,
    } satisfies Tokenizer;
    registerTokenizerKind({
      name: 'probe',
      title: 'Probe',
      create: () => ({ tokenizer: tok, module }),
      parity: { probe_case: () => new Map([['output.y', E.zeros([1])]]) },
    });
    assert.equal(createTokenizer('probe', {}).tokenizer.modality, 'audio');
    assert.ok(parityCases().includes('probe_case'));
    assert.throws(() => trainerFor('probe'), /cannot train "probe" \(trainable: magvit2, larp\)/);
  });
});

describe('kind-declared training options', () => {
  it('each kind declares its own; the union names the kinds of each', () => {
    const options = trainerOptions();
    assert.deepEqual(
      options.map((o) => [o.key, o.option.flag, o.kinds.map((k) => k.name)]),
      [
        ['bits', '--bits <n>', ['magvit2']],
        ['tokens', '--tokens <n>', ['larp']],
        ['prior', '--no-prior', ['larp']],
      ],
    );
    assert.throws(() => options[1]!.option.parse!('0'), /--tokens must be an integer ≥ 1 and ≤ 4096, got "0"/);
  });

  it("apply to the kind's own preset, and are refused for another kind", () => {
    const larp = trainingPreset('larp', 'tiny', { tokens: 8, prior: false, bits: undefined });
    assert.deepEqual([(larp.model as LarpModelOptions).tokens, (larp.model as LarpModelOptions).prior], [8, false]);
    assert.equal(trainerFor('larp').presets.tiny!.model === larp.model, false, 'the registered preset is not changed');
    const config = larpTrainer.modelConfig(larp as Preset<LarpModelOptions>, { size: 32, frames: 8, channels: 1 });
    assert.deepEqual([config.bottleneck_token_num, (config.prior_model as { name: string }).name], [8, 'none']);
    assert.equal((trainingPreset('magvit2', 'micro', { bits: 6 }).model as Magvit2ModelOptions).bits, 6);
    assert.throws(
      () => trainingPreset('larp', 'tiny', { bits: 6 }),
      /^VtokError: --bits applies to magvit2 only, not larp$/,
    );
    assert.throws(
      () => trainingPreset('magvit2', 'tiny', { prior: false }),
      /^VtokError: --no-prior applies to larp only, not magvit2$/,
    );
    assert.throws(
      () => trainingPreset('magvit2', 'tiny', { depth: 3 }),
      /unknown training option "depth" \(known: bits, tokens, prior\)/,
    );
  });
});
