import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { buildIndex, readIndex, ShardReader, writeIndex, writeShard, type ShardClip } from '../../src/corpus/shards.js';
import { tokenizeCorpus } from '../../src/corpus/tokenize-corpus.js';
import { CAPTIONED_MNIST_CLASSES, CaptionedMovingMnist } from '../../src/data/captioned-mnist.js';
import { scanCaptionedFolder } from '../../src/data/captioned-folder.js';
import { TextPrefixLm } from '../../src/generation/prefix-lm/text-lm.js';
import { buildSequence } from '../../src/generation/tasks.js';
import { classLabel, layoutFromJson, layoutToJson, specialId } from '../../src/generation/vocab.js';
import { layoutForShards, LmBatcher, lmBatches, sampleRequests } from '../../src/train/prefix-lm.js';
import { parseMixture } from '../../src/train/prefix-lm-run.js';
import { vtok } from '../cli/run-vtok.js';
import { tempDir } from '../io/fixtures.js';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

test('captioned Moving MNIST: one-digit clips carry a digit×motion class, two-digit clips none', () => {
  const ds = new CaptionedMovingMnist({ length: 60, seed: 2 });
  let one = 0;
  for (let i = 0; i < 60; i++) {
    const c = ds.get(i);
    const { digits, axes, class: k } = c.labels as { digits: number[]; axes: string[]; class?: number };
    if (digits.length === 2) {
      assert.equal(k, undefined, c.caption);
      continue;
    }
    one++;
    assert.equal(k, 2 * digits[0]! + (axes[0] === 'vertical' ? 1 : 0));
    // the class name is the caption's digit and motion
    assert.equal(c.caption, `the digit ${CAPTIONED_MNIST_CLASSES[k!]!.replace(' ', ' moves ')}`);
  }
  assert.ok(one > 15 && one < 45, `${one} one-digit clips`);
});

test('a folder labels.tsv labels its videos by class name; bad lines are refused by line', () => {
  const root = tempDir('labelled');
  mkdirSync(join(root, 'sub'));
  for (const f of ['a.mp4', 'b.mp4', 'sub/c.mp4', 'd.mp4']) writeFileSync(join(root, f), 'x');
  writeFileSync(join(root, 'labels.tsv'), '# clip\tclass\na.mp4\twalking\nsub/c.mp4\t running \n\nb.mp4\twalking\n');
  const { items, classes } = scanCaptionedFolder(root);
  assert.deepEqual(classes, ['running', 'walking']);
  const byName = Object.fromEntries(items.map((it) => [it.path.slice(root.length + 1), it.label]));
  assert.deepEqual(byName, { 'a.mp4': 1, 'b.mp4': 1, 'd.mp4': undefined, 'sub/c.mp4': 0 });
  writeFileSync(join(root, 'labels.tsv'), 'a.mp4 walking\n');
  assert.throws(() => scanCaptionedFolder(root), /labels.tsv: line 1: expected "<video path><TAB><class name>"/);
  writeFileSync(join(root, 'labels.tsv'), 'a.mp4\twalking\nzz.mp4\trunning\n');
  assert.throws(() => scanCaptionedFolder(root), /line 2: zz.mp4 is not a video of/);
  writeFileSync(join(root, 'labels.tsv'), 'a.mp4\twalking\na.mp4\trunning\n');
  assert.throws(() => scanCaptionedFolder(root), /line 2: a.mp4 is labelled twice/);
});

test('an index of captioned Moving MNIST from before class labels gets them when read', () => {
  const dir = tempDir('old-index');
  const clip = (i: number, digits: number[], axes: string[]): ShardClip => ({
    source: `captioned-mnist:train:0:${i}`,
    ids: new Int32Array(4),
    grid: [1, 2, 2],
    caption: 'c',
    labels: { digits, axes },
  });
  writeShard(join(dir, 'shard-00000000.vtks'), 16, [
    clip(0, [3], ['vertical']),
    clip(1, [3, 4], ['vertical', 'horizontal']),
    clip(2, [9], ['horizontal']),
  ]);
  const corpus = JSON.stringify({ kind: 'captioned-mnist', split: 'train', seed: 0, frames: 1, digits: 'mixed' });
  const info = { tokenizer: { kind: 'magvit2', vocabSize: 16, identity: 'x' }, clipFrames: 1, size: 8, channels: 1 };
  const index = buildIndex(dir, { ...info, corpus });
  delete index.classes;
  for (const c of index.clips) delete c.labels!.class;
  writeIndex(dir, index); // as an older version wrote it
  const read = readIndex(dir);
  assert.deepEqual(read.classes, CAPTIONED_MNIST_CLASSES);
  assert.deepEqual(
    read.clips.map((c) => c.labels?.class),
    [7, undefined, 18],
  );
});

/** Shards of 12 clips; the even ones have a class label (of 3 named classes), the odd ones none. */
function labelledShards(): ShardReader {
  const dir = tempDir('class-shards');
  const clips: ShardClip[] = Array.from({ length: 12 }, (_, i) => ({
    source: `s:${i}`,
    ids: Int32Array.from({ length: 18 }, (_, j) => (i + j) % 16),
    grid: [2, 3, 3],
    caption: `clip ${i}`,
    labels: i % 2 === 0 ? { class: (i / 2) % 3 } : {},
  }));
  writeShard(join(dir, 'shard-00000000.vtks'), 16, clips);
  const tokenizer = { kind: 'magvit2', vocabSize: 16, identity: 'test' };
  writeIndex(
    dir,
    buildIndex(dir, { tokenizer, clipFrames: 2, size: 12, channels: 1, corpus: 't', classes: ['a', 'b', 'c'] }),
  );
  return new ShardReader(dir);
}

test('class-only training: labelled clips only, names in the layout, labels dropped to <pad>', async () => {
  E.seed(0);
  const reader = labelledShards();
  const layout = layoutForShards(reader, ['class']);
  assert.deepEqual(layout.classNames, ['a', 'b', 'c']);
  assert.deepEqual(layoutFromJson(layoutToJson(layout)).classNames, ['a', 'b', 'c']);
  assert.equal(classLabel(layout, 'c'), 2);
  assert.equal(classLabel(layout, '1'), 1);
  assert.throws(() => classLabel(layout, 'd'), /class label "d" is not one of the model's 3 classes: 0 "a", 1 "b"/);
  const bad = JSON.parse(layoutToJson(layout));
  bad.classNames = ['a', 'b'];
  assert.throws(() => layoutFromJson(bad), /class names must be 3 non-empty strings/);
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 64, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 8 },
  });
  const mixture = parseMixture('class:1');
  assert.deepEqual(mixture, { class: 1 });
  const o = { steps: 10, batchSize: 2, lr: 1e-3, seed: 1, mixture };
  const classIds = new Set([0, 1, 2].map((k) => specialId(layout, `<class_${k}>`)));
  const pad = specialId(layout, '<pad>');
  const at = buildSequence(layout, 'class', { label: 0, target: { ids: new Int32Array(18), grid: [2, 3, 3] } })
    .segments[0]!.start;
  // one epoch is the 6 labelled clips: 3 batches of 2 (the unlabelled ones sit out instead of failing)
  const seen = (dropout: number, n: number) => {
    const batcher = new LmBatcher(model, layout, dropout);
    const it = lmBatches(reader, batcher, o, 0);
    return (async () => {
      const tokens: number[] = [];
      for (let k = 0; k < n; k++) {
        const b = (await it.next()).value!;
        const ids = b.ids.data as Int32Array,
          S = b.ids.shape[1]!;
        for (let r = 0; r < b.ids.shape[0]!; r++) tokens.push(ids[r * S + at]!);
      }
      return tokens;
    })();
  };
  const kept = await seen(0, 3);
  assert.ok(
    kept.every((t) => classIds.has(t)),
    `class tokens ${kept}`,
  );
  assert.deepEqual(
    kept.map((t) => [...classIds].indexOf(t)).sort(),
    [0, 0, 1, 1, 2, 2],
    'each labelled clip once an epoch',
  );
  assert.ok((await seen(1, 3)).every((t) => t === pad));
  assert.deepEqual(sampleRequests(reader.index.clips, mixture), [
    { task: 'class', label: 0 },
    { task: 'class', label: 1 },
  ]);
  assert.throws(() => parseMixture('class;1'), /expected task=weight pairs/);
});

test('vtok train lm --mixture class:1 on captioned Moving MNIST shards, then generate --task class', async () => {
  const shards = join(tempDir('class-mnist'), 'shards');
  await tokenizeCorpus({
    corpus: { kind: 'captioned-mnist', split: 'train', seed: 0, clips: 8 },
    model: TOKENIZER,
    out: shards,
    workers: 0,
    quiet: true,
  });
  const index = readIndex(shards);
  assert.deepEqual(index.classes, CAPTIONED_MNIST_CLASSES);
  const labelled = index.clips.filter((c) => c.labels?.class !== undefined);
  assert.ok(labelled.length >= 2 && labelled.length < 8, `${labelled.length} one-digit clips of 8`);
  const run = join(tempDir('class-run'), 'run');
  const train = await vtok(
    'train',
    'lm',
    '--shards',
    shards,
    '--tokenizer',
    TOKENIZER,
    '--preset',
    'tiny',
    '--steps',
    '2',
    '--batch',
    '2',
    '--mixture',
    'class:1',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(train.code, 0, train.stderr);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual(config.layout.classNames, CAPTIONED_MNIST_CLASSES);
  assert.deepEqual(config.layout.condFrames, [1, 2, 3], 'fp of 5-frame clips: 1 to 3 latent frames');
  const name = CAPTIONED_MNIST_CLASSES[labelled[0]!.labels!.class as number]!;
  const out = join(tempDir('class-gen'), 'c.gif');
  const gen = await vtok('generate', '--model', run, '--task', 'class', '--label', name, '--cfg', '2', '-o', out);
  assert.equal(gen.code, 0, gen.stderr);
  assert.match(gen.stdout, /1 sample\(s\), 5 frame\(s\) of 64x64/);
  const wrong = await vtok('generate', '--model', run, '--task', 'class', '--label', 'the digit 7', '-o', out);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /class label "the digit 7" is not one of the model's 20 classes: 0 "0 left and right"/);
});
