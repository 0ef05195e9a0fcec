import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { buildIndex, ShardReader, writeIndex, writeShard, type ShardClip } from '../../src/corpus/shards.js';
import { generate, sampleClips } from '../../src/generation/generate.js';
import { loadGenerator, readLmConfig } from '../../src/generation/model-dir.js';
import { TextPrefixLm } from '../../src/generation/prefix-lm/text-lm.js';
import { buildSequence, outputPlan, parseOutput, textSlotsFor } from '../../src/generation/tasks.js';
import { layoutForTokenizer, type VocabLayout } from '../../src/generation/vocab.js';
import type { Frame } from '../../src/io/frame.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { defaultMixture, DEFAULT_MIXTURE, layoutForShards, LmBatcher, lmBatches } from '../../src/train/prefix-lm.js';
import { runSteps } from '../../src/util/steps.js';
import { tempDir } from '../io/fixtures.js';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const SHIPPED = fileURLToPath(new URL('../../../models/t2v-mnist', import.meta.url));
const { tokenizer, module } = loadTokenizer(TOKENIZER);

/** An untrained tiny generator over the shipped tokenizer, its layout as `layout` makes it. */
function modelDir(layout: (l: VocabLayout) => VocabLayout = (l) => l): string {
  E.seed(0);
  const base = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks: ['t2v', 'uncond', 'fp', 'i2v'],
    sizes: [{ frames: 5, height: 64, width: 64 }],
  });
  const model = new TextPrefixLm({
    lm: { vocabSize: base.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 1400, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 40 },
  });
  const dir = tempDir('slots');
  const config = { model: { kind: 'prefix-lm', config: model.config }, layout: layout(base), tokenizer: TOKENIZER };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, fps: 8 }));
  saveCheckpoint(dir, { step: 0, weights: { model: model.stateDict() }, optimizers: {}, state: {} }, { best: true });
  return dir;
}

const image: Frame = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(90) };

test('a model saved before layouts kept text slots gets the ones it was trained with (t2v, t2i, i2v)', () => {
  assert.deepEqual(readLmConfig(SHIPPED).layout.text, { tasks: ['t2v', 't2i', 'i2v'], length: 80 });
  assert.deepEqual(readLmConfig(modelDir()).layout.text, { tasks: ['t2v', 'i2v'], length: 40 });
});

test('image-to-video without a prompt: the text slot is there, its keys hidden (what condition dropout trains)', () => {
  const gen = loadGenerator(modelDir((l) => ({ ...l, text: textSlotsFor(['t2v', 'uncond', 'fp', 'i2v'], 40) })));
  const bare = generate(gen, { task: 'i2v', image, seed: 7 });
  const seq = bare.sequences[0]!;
  const parsed = parseOutput(gen.layout, seq);
  assert.equal(parsed.task, 'i2v');
  const slot = buildSequence(gen.layout, 'i2v', { image: parsed.input }).text;
  assert.deepEqual(slot, { start: 3, length: 40 }, 'the prefix holds the 40-token text slot');
  // hidden keys: a prompt's embeddings in the slot change nothing while none of its keys is valid
  const prompt = gen.model.tokenize(['the digit 4 moves left and right']);
  const x = { image: parsed.input, textTokens: prompt };
  const [embedded] = gen.model.embed(prompt);
  const hidden = { embeddings: embedded!.embeddings, valid: new Uint8Array(40) };
  const drawn = runSteps(
    sampleClips(
      gen,
      [{ sequence: buildSequence(gen.layout, 'i2v', x), plan: outputPlan(gen.layout, 'i2v', x), text: hidden }],
      {
        seed: 7,
      },
    ),
  );
  assert.deepEqual(drawn.tokens[0]!.ids, bare.tokens[0]![0]!.ids);
  // with the prompt's keys visible the draw differs: the slot is read
  const shown = generate(gen, { task: 'i2v', image, seed: 7, prompt: 'the digit 4 moves left and right' });
  assert.notDeepEqual(shown.tokens[0]![0]!.ids, bare.tokens[0]![0]!.ids);
  // a task the layout gives no slot refuses a prompt
  const noSlot = loadGenerator(modelDir((l) => ({ ...l, text: { tasks: ['t2v'], length: 40 } })));
  assert.throws(
    () => generate(noSlot, { task: 'i2v', image, prompt: 'a' }),
    /task i2v of this model takes no text prompt \(it was trained without\)/,
  );
  // <bos> <task> <bov_i> image <eov_i> <res> <bov_o> output <eov_o> <eos>: no slot
  assert.equal(generate(noSlot, { task: 'i2v', image, seed: 1 }).sequences[0]!.length, 2 + 258 + 2 + 1024 + 2);
});

/** 16 clips of grid [2, 3, 3]; the first 6 have captions. */
function partlyCaptioned(): ShardReader {
  const dir = tempDir('part-captioned');
  const clips: ShardClip[] = Array.from({ length: 16 }, (_, i) => ({
    source: `p:${i}`,
    ids: Int32Array.from({ length: 18 }, (_, j) => (i * 5 + j) % 16),
    grid: [2, 3, 3],
    ...(i < 6 ? { caption: `clip ${i}` } : {}),
  }));
  writeShard(join(dir, 'shard-00000000.vtks'), 16, clips);
  const tokenizer = { kind: 'magvit2', vocabSize: 16, identity: 'test' };
  writeIndex(dir, buildIndex(dir, { tokenizer, clipFrames: 2, size: 12, channels: 1, corpus: 'p' }));
  return new ShardReader(dir);
}

test('a corpus where some clips lack captions: text tasks draw captioned clips, the others every clip', async () => {
  E.seed(0);
  const reader = partlyCaptioned();
  const mixture = defaultMixture(reader);
  assert.deepEqual(mixture, DEFAULT_MIXTURE);
  const layout = layoutForShards(reader, Object.keys(mixture), { textLength: 8 });
  assert.deepEqual(layout.text, { tasks: ['t2v', 't2i', 'fp', 'i2v'], length: 8 });
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 64, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 8 },
  });
  const batcher = new LmBatcher(model, layout, 0);
  // fp and i2v rows have one length (conditioning and output make the whole clip) and share batches
  const taskOf = new Map(Object.keys(mixture).map((t) => [batcher.length(t), t === 'fp' ? 'i2v' : t]));
  assert.equal(taskOf.size, 4);
  const o = { steps: 100, batchSize: 1, lr: 1e-3, seed: 2, mixture, imageSteps: 6, imageBatch: 1 };
  const rows = { image: 0, text: 0, hidden: 0, other: 0 };
  let k = 0;
  // the image phase (6 rows of t2i, from the 6 captioned clips), then 3 epochs of one row per batch
  for await (const b of lmBatches(reader, batcher, o, 0)) {
    const task = taskOf.get(b.ids.shape[1]!)!;
    if (k++ < 6) {
      assert.equal(task, 't2i');
      rows.image += b.ids.shape[0]!;
      continue;
    }
    const valid = b.textValid ? Array.from(b.textValid.data as Uint8Array) : undefined;
    if (task === 't2v' || task === 't2i') {
      assert.ok(
        valid!.some((v) => v),
        `${task}: a captioned clip, its text shown`,
      );
      rows.text++;
    } else if (task === 'i2v') {
      if (valid!.some((v) => v)) rows.text++;
      else rows.hidden++;
    } else {
      assert.equal(b.textValid, undefined, `${task} has no text slot`);
      rows.other++;
    }
    if (k === 6 + 48) break;
  }
  assert.equal(rows.image, 6);
  assert.ok(rows.text <= 18 && rows.text > 0, `${rows.text} rows with text (3 epochs of 6 captioned clips)`);
  assert.ok(rows.hidden > 0, 'uncaptioned clips drawn for i2v or fp keep the slot, hidden');
  assert.ok(rows.other > 0);
});

test('the shipped t2v-mnist: image to video without a prompt runs with its text slot hidden', () => {
  const gen = loadGenerator(SHIPPED);
  const r = generate(gen, { task: 'i2v', image, seed: 1, gray: true });
  const seq = r.sequences[0]!;
  assert.equal(seq[2], gen.layout.special['<bot_i>']);
  assert.equal(seq[3 + 80], gen.layout.special['<eot_i>'], 'the 80-byte slot of its text encoder');
  assert.deepEqual(r.frames.shape, [1, 1, 5, 64, 64]);
});
