import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import {
  buildVocabLayout,
  checkTokenizer,
  layoutForTokenizer,
  layoutFromJson,
  layoutToJson,
  specialId,
  specialName,
} from '../../src/generation/vocab.js';
import { tokenizerIdentity } from '../../src/tokenizers/identity.js';
import { VtokError } from '../../src/util/errors.js';

const MODEL = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

test('vocabulary layout from the shipped tokenizer: blocks, specials, JSON round trip, identity check', () => {
  const { tokenizer, module } = loadTokenizer(MODEL);
  const id = tokenizerIdentity(tokenizer, module.stateDict());
  assert.equal(id.kind, 'magvit2');
  assert.equal(id.vocabSize, 1024);
  assert.match(id.identity, /^[0-9a-f]{64}$/);
  // the identity depends on the weights, not only the config
  assert.equal(tokenizerIdentity(tokenizer, module.stateDict()).identity, id.identity);
  const w = module.stateDict();
  const [name, t] = [...w.entries()][0]!;
  const changed = new Float32Array(t.data as Float32Array);
  changed[0]! += 1;
  w.set(name, E.concrete(changed, [...t.shape], 'float32'));
  const other = tokenizerIdentity(tokenizer, w);
  assert.notEqual(other.identity, id.identity);

  const layout = buildVocabLayout({
    tokenizer: id,
    tasks: ['uncond', 't2v'],
    outputs: [
      {
        key: '64x64',
        frames: 5,
        height: 64,
        width: 64,
        grid: tokenizer.grid([tokenizer.channels ?? 3, 5, 64, 64]).shape,
      },
    ],
    classes: 3,
    audio: { levels: 2, codesPerLevel: 16 },
  });
  assert.deepEqual(layout.visual, { start: 0, size: 1024 });
  assert.deepEqual(layout.audio, { start: 1024, levels: 2, codesPerLevel: 16 });
  assert.equal(specialId(layout, '<pad>'), 1024 + 32);
  assert.equal(layout.size, 1024 + 32 + 3 + 10 + 2 + 1 + 3);
  assert.equal(specialName(layout, specialId(layout, '<task_t2v>')), '<task_t2v>');
  assert.ok('<res_64x64>' in layout.special && '<class_2>' in layout.special && '<eoa_o>' in layout.special);
  assert.deepEqual(layout.outputs[0]!.grid, [5, 16, 16]); // the tiny model has no temporal downsampling
  assert.deepEqual(layoutFromJson(layoutToJson(layout)), layout);
  assert.throws(() => specialId(layout, '<task_i2v>'), /no <task_i2v> token/);

  checkTokenizer(layout, id);
  const direct = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks: ['uncond', 't2v'],
    sizes: [{ frames: 5, height: 64, width: 64 }],
    classes: 3,
    audio: { levels: 2, codesPerLevel: 16 },
  });
  assert.deepEqual(direct, layout);
  assert.throws(
    () => checkTokenizer(layout, other),
    (e: Error) =>
      e instanceof VtokError &&
      e.message.includes(id.identity.slice(0, 16)) &&
      e.message.includes(other.identity.slice(0, 16)),
  );
  assert.throws(() => checkTokenizer(layout, { ...id, vocabSize: 2048 }), /vocabulary 1024.*vocabulary 2048/);
});

test('vocabulary layout: bad sizes and corrupt JSON are refused', () => {
  const tok = { kind: 'magvit2', vocabSize: 1024, identity: 'x'.repeat(64) };
  const outputs = [{ key: '64x64', frames: 5, height: 64, width: 64, grid: [2, 16, 16] }];
  assert.throws(
    () => buildVocabLayout({ tokenizer: { ...tok, vocabSize: 2 ** 19 }, tasks: ['t2v'], outputs }),
    /2\^18/,
  );
  assert.throws(
    () => buildVocabLayout({ tokenizer: tok, tasks: ['t2v', 't2v'], outputs }),
    /duplicate special token <task_t2v>/,
  );
  const layout = buildVocabLayout({ tokenizer: tok, tasks: ['t2v'], outputs });
  assert.equal(layout.audio.levels, 0);
  assert.equal(specialId(layout, '<pad>'), 1024);
  assert.throws(() => layoutFromJson('{"visual":', 'lm.json'), /lm.json: vocabulary layout is not valid JSON/);
  const broken = JSON.parse(layoutToJson(layout));
  broken.special['<bos>'] = 5;
  assert.throws(() => layoutFromJson(broken, 'lm.json'), /special ids must be distinct/);
  const noGrid = JSON.parse(layoutToJson(layout));
  noGrid.outputs[0].grid = [5, 0];
  assert.throws(() => layoutFromJson(noGrid), /token grid of positive integers/);
  delete broken.special['<bos>'];
  assert.throws(() => layoutFromJson(broken), /missing <bos>/);
});
