import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FolderDataset, scanFolder, VIDEO_EXTS } from '../../src/data/folder.js';
import { batchPlan, createLoader } from '../../src/data/loader.js';
import { SyntheticClips } from '../../src/data/synthetic.js';
import { openDataset, type DatasetSpec } from '../../src/data/open.js';
import { readAllFrames, writePng } from '../../src/io/video.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';

const dir = tempDir('data');
const ucf = join(dir, 'ucf');

// A miniature UCF-101: two classes of two videos, a class index and a split file.
const ready = (async () => {
  for (const [cls, src] of [
    ['Juggling', 'testsrc'],
    ['Bowling', 'smptebars'],
  ] as const) {
    mkdirSync(join(ucf, cls), { recursive: true });
    for (const g of [1, 2]) {
      await makeTestVideo(join(ucf, cls, `v_${cls}_g0${g}_c01.avi`), {
        source: src,
        width: 80,
        height: 60,
        frames: 12 + 4 * g,
        fps: 10,
      });
    }
  }
  writeFileSync(join(dir, 'classInd.txt'), '1 Juggling\n2 Bowling\n');
  writeFileSync(join(dir, 'trainlist01.txt'), 'Juggling/v_Juggling_g01_c01.avi 1\nBowling/v_Bowling_g02_c01.avi 2\n');
})();

test('a UCF-101 folder: classes from subfolders or classInd.txt, split files pick videos', async () => {
  await ready;
  const all = scanFolder(ucf, { exts: VIDEO_EXTS });
  assert.deepEqual(all.classes, ['Bowling', 'Juggling']);
  assert.equal(all.items.length, 4);
  assert.ok(all.items.every((it) => it.path.includes(all.classes![it.label!]!)));
  const split = scanFolder(ucf, {
    exts: VIDEO_EXTS,
    split: join(dir, 'trainlist01.txt'),
    classIndex: join(dir, 'classInd.txt'),
  });
  assert.deepEqual(split.classes, ['Juggling', 'Bowling']);
  assert.deepEqual(
    split.items.map((i) => i.label),
    [0, 1],
  );
  const bad = join(dir, 'badlist.txt');
  writeFileSync(bad, 'Juggling/missing.avi 1\n');
  assert.throws(
    () => scanFolder(ucf, { exts: VIDEO_EXTS, split: bad }),
    (e: Error) => e.message.startsWith(bad) && /line 1: Juggling\/missing.avi is not in/.test(e.message),
  );
  assert.throws(() => scanFolder(join(dir, 'nope'), { exts: VIDEO_EXTS }), /no such folder/);
});

test(
  'folder clips are resized, center-cropped and cut ' + 'to T frames; the centre clip is where it should be',
  async () => {
    await ready;
    const ds = new FolderDataset({ root: ucf, frames: 6, crop: 32, clipStart: 'center' });
    assert.deepEqual(ds.shape, { channels: 3, frames: 6, height: 32, width: 32 });
    const i = ds.items.findIndex((it) => it.path.endsWith('v_Juggling_g02_c01.avi')); // 20 frames
    const clip = await ds.get(i);
    assert.equal(clip.data.length, 6 * 32 * 32 * 3);
    assert.equal(ds.classes![clip.label!], 'Juggling');
    // Centre of 20 frames for a 6-frame clip starts at frame 7.
    const ref = await readAllFrames(ds.items[i]!.path, { size: 32, crop: 32 });
    assert.deepEqual(clip.data.subarray(0, 32 * 32 * 3), ref[7]!.data);
    // Random starts are seeded: the same (seed, epoch, index) gives the same clip, another epoch may differ.
    const rnd = new FolderDataset({ root: ucf, frames: 4, crop: 32, seed: 3 });
    assert.deepEqual((await rnd.get(i, 0)).data, (await rnd.get(i, 0)).data);
    const starts = new Set<string>();
    for (let e = 0; e < 6; e++) starts.add(Buffer.from((await rnd.get(i, e)).data.subarray(0, 64)).toString('hex'));
    assert.ok(starts.size > 1, 'different epochs draw different offsets');
  },
);

test('an image folder gives 1-frame clips, labelled by subfolder', async () => {
  const imgs = join(dir, 'imgs');
  for (const [cls, v] of [
    ['cats', 10],
    ['dogs', 200],
  ] as const) {
    for (const k of [0, 1])
      writePng(join(imgs, cls, `${k}.png`), { width: 20, height: 16, data: new Uint8Array(20 * 16 * 3).fill(v + k) });
  }
  const ds = openDataset({ kind: 'image-folder', root: imgs, crop: [16, 16] });
  assert.equal(ds.length, 4);
  assert.deepEqual(ds.shape, { channels: 3, frames: 1, height: 16, width: 16 });
  const c = await ds.get(3);
  assert.equal(c.label, 1);
  assert.ok(c.data.every((x) => x === 201));
});

test('the batch plan covers every clip once per epoch, reshuffles per epoch and resumes exactly', () => {
  const plan = [...batchPlan(10, { batchSize: 4, seed: 1, epochs: 2 })];
  assert.deepEqual(
    plan.map((b) => b.indices.length),
    [4, 4, 2, 4, 4, 2],
  );
  for (const e of [0, 1]) {
    const idx = plan.filter((b) => b.epoch === e).flatMap((b) => [...b.indices]);
    assert.deepEqual(
      [...idx].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  }
  assert.notDeepEqual(plan[0]!.indices, plan[3]!.indices);
  const resumed = [...batchPlan(10, { batchSize: 4, seed: 1, epochs: 2, startBatch: 4 })];
  assert.deepEqual(resumed, plan.slice(4));
  assert.deepEqual(
    [...batchPlan(10, { batchSize: 4, dropLast: true, shuffle: false })].map((b) => [...b.indices]),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ],
  );
});

test('the worker loader yields the same batches as in-process, as N×C×T×H×W floats with labels', async () => {
  const spec: DatasetSpec = { kind: 'synthetic', length: 10, frames: 4, height: 16, width: 16 };
  const opts = { batchSize: 4, seed: 5 };
  const inproc = [];
  for await (const b of await createLoader(spec, { ...opts, worker: false })) inproc.push(b);
  const viaWorker = [];
  const loader = await createLoader(spec, opts);
  assert.equal(loader.length, 10);
  assert.equal(loader.batchesPerEpoch, 3);
  assert.deepEqual(loader.classes, ['circle', 'square', 'triangle', 'cross']);
  for await (const b of loader) viaWorker.push(b);
  assert.equal(viaWorker.length, 3);
  assert.deepEqual(viaWorker, inproc);
  const ds = new SyntheticClips({ length: 10, frames: 4, height: 16, width: 16 });
  const b = viaWorker[0]!;
  assert.deepEqual(b.shape, [4, 3, 4, 16, 16]);
  // Element (n=1, c=2, t=3, y=5, x=7) against the dataset's uint8 clip.
  const clip = ds.get(b.indices[1]!);
  assert.equal(
    b.data[(((1 * 3 + 2) * 4 + 3) * 16 + 5) * 16 + 7],
    Math.fround(clip.data[((3 * 16 + 5) * 16 + 7) * 3 + 2]! / 127.5 - 1),
  );
  assert.equal(b.labels![1], clip.label);
  assert.ok(b.data.every((v) => v >= -1 && v <= 1));
});

test('prefetch: batches are built in the worker while the main thread is blocked', async () => {
  const spec: DatasetSpec = { kind: 'synthetic', length: 32, frames: 16, height: 64, width: 64 };
  const busy = (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {} // stands in for a blocking onnxruntime run
  };
  // Time to build a batch on this machine (warm: the first pass pays for compilation).
  const ds = openDataset(spec);
  for (let i = 0; i < 8; i++) ds.get(i);
  const t0 = Date.now();
  for (let i = 8; i < 16; i++) ds.get(i);
  const buildMs = Math.max(1, (Date.now() - t0) / 2);
  const loader = await createLoader(spec, { batchSize: 4, prefetch: 2, shuffle: false });
  let waited = 0;
  let n = 0;
  let last = Date.now();
  for await (const _ of loader) {
    // The first batches include the worker's own warm-up (compilation, slower still on a loaded machine).
    if (n++ >= 3) waited += Date.now() - last;
    busy(Math.max(200, buildMs * 3));
    last = Date.now();
  }
  assert.equal(n, 8);
  // Built in-process, the consumer would wait for all 5 of these batches to be built (5 builds); with the worker,
  // next to nothing. Allow half of that (2.5 builds): the worker's thread shares a loaded machine's cores.
  assert.ok(waited < 2.5 * buildMs, `waited ${waited} ms in all for 5 batches that take ${buildMs} ms each to build`);
});

test('errors in the worker surface as one clear error naming the file; the loader stops', async () => {
  await ready;
  const broken = join(dir, 'broken');
  mkdirSync(join(broken, 'A'), { recursive: true });
  writeFileSync(join(broken, 'A', 'junk.mp4'), Buffer.alloc(3000, 7));
  const loader = await createLoader({ kind: 'video-folder', root: broken, frames: 2, crop: 16 }, { batchSize: 1 });
  await assert.rejects(
    async () => {
      for await (const _ of loader) {
        /* consume */
      }
    },
    (e: Error) => e.name === 'VtokError' && /junk.mp4: not a video or image/.test(e.message),
  );
  await assert.rejects(
    createLoader({ kind: 'video-folder', root: join(dir, 'none'), frames: 2, crop: 16 }, { batchSize: 1 }),
    /no such folder/,
  );
});
