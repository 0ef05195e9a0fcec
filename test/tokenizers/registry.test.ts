import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { Linear } from '../../src/nn/index.js';
import { parityCases } from '../../src/parity/index.js';
import { createTokenizer, registerTokenizerKind, tokenizerKind, tokenizerKinds, trainerFor } from '../../src/tokenizers/registry.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

describe('tokenizer kinds registry', () => {
  it('holds every kind with its presets and parity cases', () => {
    assert.deepEqual(tokenizerKinds().slice(0, 2), ['magvit2', 'larp']);
    assert.deepEqual(parityCases().filter((c) => !c.startsWith('probe')).sort(), ['larp_prior', 'larp_tokenizer', 'lfq_lucidrains', 'lfq_openmagvit2', 'magvit2_image', 'magvit2_video']);
    assert.ok(trainerFor('larp').presets.tiny && trainerFor('magvit2').presets.micro);
    assert.throws(() => tokenizerKind('nope'), /unknown tokenizer kind "nope" \(known: magvit2, larp/);
  });

  it('a new kind plugs in by registering one object', () => {
    const module = new Linear(1, 1);
    const tok = { kind: 'probe', modality: 'audio', config: {}, vocabBits: 1, vocabSize: 2, clipFrames: 1, grid: () => ({ shape: [1] }), encode: (x) => x, decode: (x) => x, encodeAsync: async (x) => x, decodeAsync: async (x) => x } satisfies Tokenizer;
    registerTokenizerKind({ name: 'probe', create: () => ({ tokenizer: tok, module }), parity: { probe_case: () => new Map([['output.y', E.zeros([1])]]) } });
    assert.equal(createTokenizer('probe', {}).tokenizer.modality, 'audio');
    assert.ok(parityCases().includes('probe_case'));
    assert.throws(() => trainerFor('probe'), /cannot train "probe" \(trainable: magvit2, larp\)/);
  });
});
