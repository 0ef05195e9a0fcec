import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { TextPrefixLm } from '../../src/generation/prefix-lm/text-lm.js';
import { buildIndex, ShardReader, writeIndex, writeShard, type ShardClip } from '../../src/corpus/shards.js';
import { trainLoop } from '../../src/train/loop.js';
import { parseMixture } from '../../src/train/prefix-lm-run.js';
import {
  imageBatchSize,
  layoutForShards,
  LmBatcher,
  lmBatches,
  prefixLmTask,
  type LmTrainOptions,
} from '../../src/train/prefix-lm.js';
import { tempDir } from '../io/fixtures.js';
import { writeEncoder } from '../generation/text/tiny-t5.js';
import { OnnxTextEncoder } from '../../src/generation/text/onnx.js';
import { vtok } from '../cli/run-vtok.js';
import { buildVocabLayout } from '../../src/generation/vocab.js';
import { tokenizerIdentity } from '../../src/tokenizers/identity.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { fileURLToPath } from 'node:url';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

/**
 * A tiny corpus whose tokens follow from the caption (digit d → a fixed pattern shifted by d), so text-to-video
 * and frame prediction are learnable in a few dozen steps: grid [2, 3, 3], vocabulary 16.
 */
function tinyShards(n: number, tokenizer = { kind: 'magvit2', vocabSize: 16, identity: 'test' }): ShardReader {
  const dir = tempDir('lm-shards');
  const clips: ShardClip[] = Array.from({ length: n }, (_, i) => {
    const d = i % 4,
      axis = (i >> 2) % 2;
    const ids = Int32Array.from({ length: 18 }, (_, j) => (d * 3 + (axis ? j : 17 - j)) % 16);
    return {
      source: `tiny:${i}`,
      ids,
      grid: [2, 3, 3],
      caption: `the digit ${d} moves ${axis ? 'up and down' : 'left and right'}`,
    };
  });
  writeShard(join(dir, 'shard-00000000.vtks'), tokenizer.vocabSize, clips);
  writeIndex(dir, buildIndex(dir, { tokenizer, clipFrames: 2, size: 12, channels: 1, corpus: 'tiny' }));
  return new ShardReader(dir);
}

const mixture = { t2v: 0.4, t2i: 0.1, uncond: 0.1, fp: 0.2, i2v: 0.2 };

function setup(steps: number) {
  E.seed(0);
  const reader = tinyShards(32);
  const layout = layoutForShards(reader, Object.keys(mixture));
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 32, layers: 2, heads: 2, hidden: 64, maxLength: 96, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 40 },
  });
  const batcher = new LmBatcher(model, layout, 0.1);
  const o: LmTrainOptions = { steps, batchSize: 4, lr: 1e-2, seed: 3, mixture, imageSteps: 4, emaDecay: 0.9 };
  return { reader, layout, model, batcher, o, task: prefixLmTask(model, batcher, { ...o, val: reader, valClips: 8 }) };
}

test('prefix LM training: batches are one length group each, loss falls, validation NLL per task', async () => {
  const { reader, batcher, o, task } = setup(40);
  // the first imageSteps batches are t2i, of batch × latent frames rows (as many visual tokens as a video batch);
  // afterwards several tasks (hence lengths) appear, each batch one length
  assert.equal(imageBatchSize(reader, o), 8);
  assert.equal(imageBatchSize(reader, { ...o, imageBatch: 5 }), 5);
  const seen = new Set<number>();
  let k = 0;
  for await (const b of lmBatches(reader, batcher, o, 0)) {
    const [B, S] = b.ids.shape as [number, number];
    assert.equal(B, k < 4 ? 8 : 4);
    if (k < 4) assert.equal(S, batcher.length('t2i'));
    seen.add(S);
    if (++k === 30) break;
  }
  assert.ok(seen.size >= 3, `lengths seen: ${[...seen]}`);
  const run = tempDir('lm-run');
  const r = await trainLoop(task, {
    runDir: run,
    totalSteps: 40,
    batches: (s) => lmBatches(reader, batcher, o, s),
    config: { model: 'tiny' },
    evalEvery: 40,
    quiet: true,
    logEvery: 5,
  });
  const losses = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.loss !== undefined)
    .map((m) => m.loss as number);
  const first = losses.slice(0, 2).reduce((a, b) => a + b) / 2,
    last = losses.slice(-2).reduce((a, b) => a + b) / 2;
  assert.ok(last < 0.6 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  for (const t of Object.keys(mixture)) assert.ok(Number.isFinite(r.lastEval!.metrics[`nll_${t}`]), t);
  assert.ok(r.lastEval!.metrics.nll! < Math.log(16), `validation NLL ${r.lastEval!.metrics.nll}`);
});

test('prefix LM training resumes exactly (weights, optimizer, data position, dropout draws)', async () => {
  const straight = setup(16),
    runA = tempDir('lm-a');
  await trainLoop(straight.task, {
    runDir: runA,
    totalSteps: 16,
    batches: (s) => lmBatches(straight.reader, straight.batcher, straight.o, s),
    config: { model: 'tiny' },
    quiet: true,
  });
  const runB = tempDir('lm-b');
  const first = setup(16);
  await trainLoop(first.task, {
    runDir: runB,
    totalSteps: 16,
    batches: (s) => lmBatches(first.reader, first.batcher, first.o, s),
    config: { model: 'tiny' },
    quiet: true,
    stopAfter: 7,
  });
  const second = setup(16); // a new process: fresh model, the same command
  const r = await trainLoop(second.task, {
    runDir: runB,
    totalSteps: 16,
    batches: (s) => lmBatches(second.reader, second.batcher, second.o, s),
    config: { model: 'tiny' },
    quiet: true,
  });
  assert.equal(r.resumedFrom, 7);
  const a = straight.model.stateDict(),
    b = second.model.stateDict();
  for (const [k, t] of a)
    assert.deepEqual(Array.from(t.data as Float32Array), Array.from(b.get(k)!.data as Float32Array), k);
});

test(
  'vtok train lm: trains from shards, evaluates per ' + 'task, resumes; refuses options of the other trainer',
  async () => {
    const { tokenizer, module } = loadTokenizer(TOKENIZER);
    const shards = tinyShards(16, tokenizerIdentity(tokenizer, module.stateDict())).dir,
      run = join(tempDir('lm-cli'), 'run');
    const args = [
      'train',
      'lm',
      '--shards',
      shards,
      '--val-shards',
      shards,
      '--preset',
      'tiny',
      '--steps',
      '6',
      '--batch',
      '4',
      '--mixture',
      'uncond=1,fp=1',
      '--eval-every',
      '3',
      '--out',
      run,
      '--quiet',
    ];
    const r = await vtok(...args);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(s.step, 6);
    assert.ok(Number.isFinite(s.nll_uncond) && Number.isFinite(s.nll_fp));
    // what chooses the best checkpoint is recorded by its corpus description (kept by vtok pack; the study reads it)
    assert.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).validation, 'tiny');
    const again = await vtok(...args.map((a) => (a === '6' ? '8' : a)));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /resuming from step 6 of 8/);
    const bad = await vtok('train', 'lm', '--shards', shards, '--gan', '--out', run);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--gan applies to tokenizer training, not lm/);
    const bad2 = await vtok('train', 'magvit2', '--shards', shards, '--out', run);
    assert.match(bad2.stderr, /--shards applies to lm only, not magvit2/);
  },
);

test(
  'prefix LM training with a frozen ONNX text encoder: ' + "only the LM trains, on the encoder's embeddings",
  async () => {
    E.seed(0);
    const encDir = tempDir('t5');
    writeEncoder(encDir);
    const frozen = OnnxTextEncoder.load(encDir);
    const reader = tinyShards(16);
    const layout = layoutForShards(reader, ['t2v']);
    const model = new TextPrefixLm(
      {
        lm: { vocabSize: layout.size, dim: 32, layers: 2, heads: 2, hidden: 64, maxLength: 64, textDim: 16 },
        text: { kind: 'onnx', dir: encDir, dim: 16, maxTokens: 12 },
      },
      { frozen },
    );
    assert.ok(model.stateDict().size > 0 && [...model.stateDict().keys()].every((k) => k.startsWith('lm.')));
    const batcher = new LmBatcher(model, layout, 0.1);
    const o: LmTrainOptions = { steps: 30, batchSize: 4, lr: 1e-2, seed: 1, mixture: { t2v: 1 } };
    const b = (await lmBatches(reader, batcher, o, 0).next()).value!;
    assert.deepEqual(b.textEmb!.shape, [4, 12, 16]);
    assert.equal(b.textIds, undefined);
    const run = tempDir('lm-onnx');
    await trainLoop(prefixLmTask(model, batcher, o), {
      runDir: run,
      totalSteps: 30,
      batches: (s) => lmBatches(reader, batcher, o, s),
      config: { model: 'onnx' },
      quiet: true,
      logEvery: 5,
    });
    const losses = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).loss as number);
    assert.ok(losses.at(-1)! < 0.6 * losses[0]!, `loss ${losses[0]} → ${losses.at(-1)}`);
  },
);

test('frame prediction rows condition on the latent frames of the layout, all in one batch', () => {
  const make = (condFrames?: number[]) =>
    buildVocabLayout({
      tokenizer: { kind: 'magvit2', vocabSize: 16, identity: 'test' },
      tasks: ['fp', 't2v'],
      outputs: [{ key: '8x8', frames: 3, height: 8, width: 8, grid: [3, 2, 2] }],
      classes: 0,
      condFrames,
    });
  const layout = make();
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 64, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 8 },
  });
  const rows = Array.from({ length: 16 }, (_, i) => ({
    task: 'fp',
    ids: Int32Array.from({ length: 12 }, (_, j) => (i + j) % 16),
    grid: [3, 2, 2],
  }));
  const prefixes = (b: ReturnType<LmBatcher['batch']>) => Array.from(b.prefixLength.data as Int32Array);
  const both = prefixes(new LmBatcher(model, layout).batch(rows, 1));
  assert.equal(new Set(both).size, 2, `prefix lengths ${both}`);
  assert.equal(Math.max(...both) - Math.min(...both), 4, 'a second latent frame moves 2×2 tokens into the prefix');
  assert.equal(new Set(prefixes(new LmBatcher(model, make([1])).batch(rows, 1))).size, 1);
  // a layout of 1 up to 3: rows of a 3-latent-frame clip condition on 1 or 2 (one is always left to generate)
  assert.equal(new Set(prefixes(new LmBatcher(model, make([1, 2, 3])).batch(rows, 1))).size, 2);
  assert.throws(() => make([0]), /condFrames must be distinct positive integers, got \[0\]/);
});

test('--mixture: every task once with a finite weight; class needs labelled clips', () => {
  assert.deepEqual(parseMixture('t2v=0.8, fp=0.2,'), { t2v: 0.8, fp: 0.2 });
  assert.throws(() => parseMixture(''), /^VtokError: --mixture is empty: give task=weight pairs/);
  assert.throws(() => parseMixture(' , '), /--mixture is empty/);
  assert.throws(() => parseMixture('t2v=1,fp=1,t2v=2'), /--mixture names task t2v twice/);
  assert.throws(() => parseMixture('t2v=1e400'), /--mixture: the weight of t2v must be a finite number, got 1e400/);
  assert.throws(() => parseMixture('t2v=0'), /no task has a positive weight/);
  const unlabelled = tinyShards(4);
  assert.throws(() => layoutForShards(unlabelled, ['t2v', 'class']), /task class needs class labels, and no clip of/);
});
