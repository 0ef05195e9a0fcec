import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { buildIndex, writeIndex, writeShard, type ShardClip } from '../../src/corpus/shards.js';
import { loadGenerator, packGenerator } from '../../src/generation/model-dir.js';
import { OnnxTextEncoder } from '../../src/generation/text/onnx.js';
import { tokenizerIdentity } from '../../src/tokenizers/identity.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { trainLm } from '../../src/train/prefix-lm-run.js';
import { tempDir } from '../io/fixtures.js';
import { writeEncoder } from './text/tiny-t5.js';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

test("a frozen text encoder's SHA-256 is kept in the LM's config; other encoder files are refused", async () => {
  E.seed(0);
  const encoder = tempDir('enc-a');
  writeEncoder(encoder);
  E.seed(5);
  const other = tempDir('enc-b');
  writeEncoder(other);
  const sha = OnnxTextEncoder.load(encoder).sha256;
  assert.notEqual(OnnxTextEncoder.load(other).sha256, sha);

  const { tokenizer, module } = loadTokenizer(TOKENIZER);
  const shards = tempDir('enc-shards');
  const clips: ShardClip[] = Array.from({ length: 4 }, (_, i) => ({
    source: `e:${i}`,
    ids: Int32Array.from({ length: 18 }, (_, j) => (i + j) % 16),
    grid: [2, 3, 3],
    caption: `clip ${i}`,
  }));
  writeShard(join(shards, 'shard-00000000.vtks'), 1024, clips);
  const identity = tokenizerIdentity(tokenizer, module.stateDict());
  writeIndex(shards, buildIndex(shards, { tokenizer: identity, clipFrames: 2, size: 12, channels: 1, corpus: 'e' }));
  const run = join(tempDir('enc-run'), 'run');
  const o = { shards, tokenizer: TOKENIZER, preset: 'tiny', batch: 2, seed: 0, out: run, quiet: true };
  await trainLm({ ...o, steps: 1, mixture: 't2v=1', textEncoder: encoder });
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.equal(config.model.config.text.sha256, sha);
  const packed = join(tempDir('enc-pack'), 'm');
  packGenerator(run, packed);
  assert.equal(loadGenerator(packed).model.frozen?.sha256, sha, 'the packed copy is the same encoder');

  // the encoder's folder swapped for another's files: loading and resuming are refused, naming both digests
  const mismatch = new RegExp(
    `text encoder mismatch: the model was trained with text encoder files of sha256 ${sha!.slice(0, 16)} but got ` +
      '[0-9a-f]{16}',
  );
  await assert.rejects(trainLm({ ...o, steps: 2, mixture: 't2v=1', textEncoder: other }), mismatch);
  copyFileSync(join(other, 'encoder.onnx'), join(encoder, 'encoder.onnx'));
  assert.throws(() => loadGenerator(run), mismatch);
  assert.throws(() => loadGenerator(run), new RegExp(`^VtokError: ${encoder}: text encoder mismatch`));
});
