import '../../src/engine/index.js';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tokenizeCorpus } from '../../src/corpus/tokenize-corpus.js';
import { fromFloat32, toFloat32 } from '../../src/io/tensor-data.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors-file.js';
import { tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

/**
 * `vtok info` describes what vtok itself writes (token shards, their index and folder, model, run and checkpoint
 * directories) and says plainly when weights hold NaN or Inf, failing then: such a checkpoint is not a normal one.
 */
const SHIPPED = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const dir = tempDir('rel-info');

async function json(...args: string[]): Promise<any> {
  const r = await vtok('info', ...args, '--json');
  assert.equal(r.code, 0, `vtok info ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('info: a token shard, its index and its folder', async () => {
  const out = join(dir, 'shards');
  const corpus = { kind: 'captioned-mnist', split: 'train', seed: 0, clips: 3 } as const;
  await tokenizeCorpus({ corpus, model: SHIPPED, out, workers: 0, shardSize: 2, quiet: true });
  const shard = await json(join(out, 'shard-00000000.vtks'));
  const { kind, clips, vocabSize, bitsPerToken, captioned, grids } = shard;
  assert.deepEqual([kind, clips, vocabSize, bitsPerToken, captioned], ['shard', 2, 1024, 10, 2]);
  assert.deepEqual(grids, { '5×16×16': 2 });
  assert.ok(shard.codebook.used > 1);
  for (const path of [join(out, 'index.json'), out]) {
    const ix = await json(path);
    const seen = [ix.kind, ix.clips, ix.shards, ix.shardFiles, ix.shardSize, ix.skipped, ix.size, ix.channels];
    assert.deepEqual(seen, ['shard-index', 3, 2, 2, 2, 0, 64, 1]);
    assert.equal(ix.tokenizer.kind, 'magvit2');
    assert.match(ix.corpus, /captioned-mnist/);
  }
  const text = await vtok('info', out);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /token shards of vtok tokenize \(index\.json\): corpus .*captioned-mnist/);
  assert.match(text.stdout, /clips\s+3 \(3 captioned; grids 5×16×16: 3\), 0 skipped/);
  const last = await vtok('info', join(out, 'shard-00000002.vtks'));
  assert.match(last.stdout, /token shard \(\.vtks\) of vtok tokenize: vocabulary 1024/);
});

test('info: model, run and checkpoint directories', async () => {
  const model = await json(SHIPPED);
  assert.deepEqual([model.kind, model.model, model.packed], ['model-directory', 'magvit2', true]);
  assert.deepEqual(model.checkpoints.steps, ['step-0000000']);
  assert.deepEqual(model.checkpoints.pointers, { latest: 'step-0000000', best: 'step-0000000' });
  assert.ok(model.config.includes('n_embed=1024'));
  assert.ok(model.data.includes('channels=1'));
  // a training run: the same layout without the packing record
  const run = join(dir, 'run');
  cpSync(SHIPPED, run, { recursive: true });
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  delete config.packed;
  writeFileSync(join(run, 'config.json'), JSON.stringify(config));
  const text = await vtok('info', run);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /run directory: magvit2\n {2}config {4}ddconfig\.double_z=false .*n_embed=1024/);
  assert.match(text.stdout, /checkpoints step-0000000 \(latest, best\)/);
  assert.equal((await json(join(run, 'config.json'))).kind, 'model-directory');
  const step = await json(join(run, 'checkpoints', 'step-0000000'));
  assert.deepEqual([step.kind, step.step], ['checkpoint-directory', 0]);
  assert.deepEqual(step.files, [{ name: 'model.safetensors', tensors: 81 }]);
  const other = await vtok('info', dir);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /^vtok: .*rel-info-\w+: is a directory, but not a token shard folder, model, run or/);
  assert.equal(other.stderr.split('\n').length, 2, other.stderr);
});

test('info: weights with NaN/Inf are named and the command fails', async () => {
  const bad = join(dir, 'diverged');
  cpSync(SHIPPED, bad, { recursive: true });
  const weights = join(bad, 'checkpoints', 'step-0000000', 'model.safetensors');
  const { tensors, metadata } = readSafetensors(weights);
  const damaged = ['encoder.conv_in.conv_1.weight', 'encoder.conv_out.conv_1.bias'];
  for (const [name, value] of [
    [damaged[0]!, NaN],
    [damaged[1]!, Infinity],
  ] as const) {
    const t = tensors.get(name)!;
    const v = toFloat32(t);
    v[1] = value;
    tensors.set(name, fromFloat32(v, t.shape, t.dtype as 'F16'));
  }
  writeSafetensors(weights, tensors, metadata);
  const step = join(bad, 'checkpoints', 'step-0000000');
  for (const [path, named] of [
    [weights, ''],
    [bad, 'step-0000000/model.safetensors:'],
    [step, 'model.safetensors:'],
  ] as [string, string][]) {
    const r = await vtok('info', path);
    assert.equal(r.code, 1, `vtok info ${path}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const names = damaged.map((n) => `${named}${n}`).join(', ');
    assert.equal(r.stderr, `vtok: ${path}: contains NaN/Inf in 2 tensors: ${names} (damaged or diverged weights)\n`);
    assert.ok(r.stdout.startsWith(`${path}\n`), 'the description is still printed');
  }
  const listing = await vtok('info', weights);
  assert.match(listing.stdout, /encoder\.conv_in\.conv_1\.weight\s+F16\s+\[[\d, ]+\]\s+1 NaN\/Inf values/);
  const asJson = await vtok('info', weights, '--json');
  assert.equal(asJson.code, 1);
  assert.deepEqual(
    JSON.parse(asJson.stdout).nonFinite,
    damaged.map((name) => ({ name, count: 1 })),
  );
});
