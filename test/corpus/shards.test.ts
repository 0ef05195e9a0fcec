import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { CaptionedMovingMnist } from '../../src/data/captioned-mnist.js';
import { buildIndex, listShards, readIndex, readShard, ShardReader, writeShard } from '../../src/corpus/shards.js';
import { tokenizeCorpus } from '../../src/corpus/tokenize-corpus.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { MAIN, vtok } from '../cli/run-vtok.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';

const MODEL = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

test('shard files: round trip, checksum, grouping by length', () => {
  const dir = tempDir('shards');
  const a = {
    source: 'a',
    ids: Int32Array.from({ length: 12 }, (_, i) => (i * 37) % 1000),
    grid: [3, 2, 2],
    caption: 'the digit 1 moves up and down',
    labels: { digits: [1] },
  };
  const b = { source: 'b', ids: Int32Array.from({ length: 8 }, (_, i) => 1023 - i), grid: [2, 2, 2] };
  writeShard(join(dir, 'shard-00000000.vtks'), 1024, [a, b], [{ source: 'c', reason: 'has 0 frames' }]);
  const r = readShard(join(dir, 'shard-00000000.vtks'));
  assert.deepEqual(r.clips, [a, b]);
  assert.deepEqual(r.skipped, [{ source: 'c', reason: 'has 0 frames' }]);
  const bytes = readFileSync(join(dir, 'shard-00000000.vtks'));
  bytes[bytes.length - 6]! ^= 1;
  writeFileSync(join(dir, 'shard-00000002.vtks'), bytes);
  assert.throws(() => readShard(join(dir, 'shard-00000002.vtks')), /checksum mismatch/);
  writeFileSync(join(dir, 'shard-00000002.vtks'), bytes.subarray(0, 20));
  assert.throws(() => readShard(join(dir, 'shard-00000002.vtks')), /truncated|checksum/);
  writeFileSync(join(dir, 'shard-00000002.vtks'), 'hello world, not a shard');
  assert.throws(() => readShard(join(dir, 'shard-00000002.vtks')), /not a vtok token shard/);
});

function expectExactlyOnce(out: string, n: number) {
  const info = readIndex(out);
  const rebuilt = buildIndex(out, info); // throws if a source is in two shards
  assert.equal(rebuilt.clips.length, n);
  assert.deepEqual(
    new Set(rebuilt.clips.map((c) => c.source)),
    new Set(Array.from({ length: n }, (_, i) => `captioned-mnist:train:0:${i}`)),
  );
  assert.deepEqual(new Set(info.clips.map((c) => c.source)), new Set(rebuilt.clips.map((c) => c.source)));
  return rebuilt;
}

test(
  'vtok tokenize: killed mid-run (SIGKILL), re-run finishes, ' + 'every clip exactly once, ids as the tokenizer gives',
  async () => {
    const out = tempDir('tokenize-kill');
    const N = 12;
    const args = [
      MAIN,
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      String(N),
      '--out',
      out,
      '--shard-size',
      '2',
      '--workers',
      '1',
      '--json',
    ];
    const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, VTOK_THREADS: '1' } });
    const exited = new Promise((r) => child.on('exit', r));
    // kill once some shards are written but not all
    const t0 = Date.now();
    while (listShards(out).length < 2 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited;
    const before = listShards(out).length;
    assert.ok(before >= 2 && before < N / 2, `killed after ${before} of ${N / 2} shards`);

    const r = await vtok(
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      String(N),
      '--out',
      out,
      '--shard-size',
      '2',
      '--workers',
      '2',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.clips, N);
    assert.ok(s.resumed >= 2 * before, `resumed ${s.resumed}`);
    assert.equal(s.processed + s.resumed, N);
    assert.ok(!readdirSync(out).some((f) => f.endsWith('.tmp')));
    const index = expectExactlyOnce(out, N);

    // a third run has nothing to do
    const again = await vtok(
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      String(N),
      '--frames',
      '5',
      '--out',
      out,
      '--json',
    ); // defaults named: the same corpus
    assert.equal(JSON.parse(again.stdout).processed, 0);

    // the stored ids are the tokenizer's for that clip, with its caption
    const reader = new ShardReader(out);
    const ref = index.clips.find((c) => c.source === 'captioned-mnist:train:0:5')!;
    const [clip] = reader.read([ref]);
    const ds = new CaptionedMovingMnist({ split: 'train', seed: 0, length: N, frames: 5 });
    const c = ds.get(5);
    assert.equal(clip!.caption, c.caption);
    const { tokenizer } = loadTokenizer(MODEL);
    const x = E.concrete(
      Float32Array.from(c.data, (v) => v / 127.5 - 1),
      [1, 1, 5, 64, 64],
      'float32',
    );
    assert.deepEqual([...clip!.ids], E.toArray(tokenizer.encode(x)));
    assert.deepEqual(clip!.grid, [5, 16, 16]);
    assert.equal([...reader.clips()].length, N);
    // grouped by sequence length: one- and two-digit captions (here: by caption length) form separate groups
    const groups = reader.groupByLength((cl) => 1280 + (cl.caption!.length > 40 ? 2 : 1));
    assert.equal(
      [...groups.values()].reduce((n, g) => n + g.length, 0),
      N,
    );
    const lengthOf = (cl: { caption?: string }) => 1280 + (cl.caption!.length > 40 ? 2 : 1);
    const batches = [...reader.lengthBatches({ lengthOf, batchSize: 4, seed: 1, epochs: 2 })];
    for (const b of batches) assert.ok(b.clips.every((cl) => lengthOf(cl) === b.length) && b.clips.length <= 4);
    for (const epoch of [0, 1]) {
      const seen = batches.filter((b) => b.epoch === epoch).flatMap((b) => b.clips.map((cl) => cl.source));
      assert.equal(new Set(seen).size, N, 'each epoch visits every clip once');
    }
    assert.deepEqual(
      [...reader.lengthBatches({ lengthOf, batchSize: 4, seed: 1, epochs: 2, startBatch: 3 })],
      batches.slice(3),
      'resume skips batches',
    );

    // another tokenizer into the same folder is refused, naming both
    const other = await vtok('tokenize', '--data', 'captioned-mnist', '--clips', '4', '--split', 'test', '--out', out);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /another corpus/);
    const badSplit = await vtok(
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      '4',
      '--split',
      'dev',
      '--out',
      out,
    );
    assert.equal(badSplit.code, 1);
    assert.match(badSplit.stderr, /--split must be train, val, test, unseen, got "dev"/);
  },
);

test('vtok tokenize on a folder: captions from sidecars, unreadable and empty videos listed as skipped', async () => {
  const root = tempDir('tokfolder');
  await makeTestVideo(join(root, 'a.mp4'), { width: 80, height: 64, frames: 6 });
  await makeTestVideo(join(root, 'b.mp4'), { width: 64, height: 64, frames: 3 }); // short: padded with its last frame
  writeFileSync(join(root, 'a.txt'), 'a test pattern\n');
  writeFileSync(join(root, 'empty.mp4'), '');
  writeFileSync(join(root, 'broken.mp4'), 'this is not a video');
  const out = tempDir('tokfolder-out');
  const s = await tokenizeCorpus({
    corpus: {
      kind: 'files',
      name: root,
      items: ['a', 'b', 'broken', 'empty'].map((n) => ({
        path: join(root, `${n}.mp4`),
        caption: n === 'a' ? 'a test pattern' : undefined,
      })),
    },
    model: MODEL,
    out,
    workers: 0,
    gray: true,
    quiet: true,
  });
  assert.equal(s.clips, 2);
  assert.equal(s.skipped, 2);
  const index = readIndex(out);
  assert.deepEqual(index.skipped.map((k) => k.source.split('/').pop()).sort(), ['broken.mp4', 'empty.mp4']);
  for (const k of index.skipped) assert.ok(k.reason.length > 5, k.reason);
  assert.equal(index.clips.find((c) => c.source.endsWith('a.mp4'))!.caption, 'a test pattern');
  assert.equal(index.clips.find((c) => c.source.endsWith('b.mp4'))!.caption, undefined);
  // the CLI on the folder resumes: nothing left to do, the skipped files are not retried
  const r = await vtok('tokenize', root, '--out', out, '--workers', '0', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).processed, 0);
  assert.ok(existsSync(join(out, 'index.json')));
  // a list file: paths relative to it, captions from the sidecars
  writeFileSync(join(root, 'list.txt'), '# two clips\na.mp4\nempty.mp4\n');
  const listed = await vtok(
    'tokenize',
    join(root, 'list.txt'),
    '--out',
    tempDir('toklist-out'),
    '--workers',
    '1',
    '--gray',
    '--json',
  );
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual([JSON.parse(listed.stdout).clips, JSON.parse(listed.stdout).skipped], [1, 1]);
  const bad = await vtok('tokenize', '--data', 'imagenet', '--clips', '2', '--out', tempDir('tokbad'));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown data set "imagenet"/);
});
