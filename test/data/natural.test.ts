import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MANIFEST,
  NaturalClips,
  findPhotos,
  loadPhotos,
  photoSplit,
  prepareNatural,
  readManifest,
  renderNaturalClip,
} from '../../src/data/natural.js';
import { namedDataset } from '../../src/data/named.js';
import { openDataset } from '../../src/data/open.js';
import { SeededRng } from '../../src/data/seeded.js';
import { readClip, writePng } from '../../src/io/video.js';
import { VtokError } from '../../src/util/errors.js';
import { tempDir } from '../io/fixtures.js';

const dir = tempDir('natural');
const photos = join(dir, 'photos');
const out = join(dir, 'prepared');

/** A small textured photo; `blue` sets its blue channel, so a clip shows which split's photos it was made from. */
function photo(path: string, w: number, h: number, r: number, g: number, blue: number): void {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = r * (0.4 + (0.6 * x) / w);
      data[o + 1] = g * (0.4 + (0.6 * y) / h);
      data[o + 2] = blue;
    }
  mkdirSync(join(path, '..'), { recursive: true });
  writePng(path, { width: w, height: h, data });
}

// p0, p1, p2 and the KDE-style p4 hash to the train split, p3 and p9 to test (photoSplit is fixed by name).
const ready = (async () => {
  photo(join(photos, 'p0.png'), 48, 40, 250, 0, 0);
  photo(join(photos, 'p1.png'), 40, 48, 0, 250, 0);
  photo(join(photos, 'p2.png'), 64, 40, 200, 200, 0);
  photo(join(photos, 'p4', 'contents', 'images', '40x32.png'), 40, 32, 90, 90, 0);
  photo(join(photos, 'p4', 'contents', 'images', '80x64.png'), 80, 64, 120, 30, 0);
  photo(join(photos, 'p4', 'contents', 'screenshot.png'), 20, 16, 0, 0, 255);
  photo(join(photos, 'p3.png'), 48, 48, 100, 0, 200);
  photo(join(photos, 'p9.png'), 40, 56, 0, 100, 150);
  writeFileSync(join(photos, 'p5.jpg'), 'not a jpeg at all');
  const logs: string[] = [];
  const m = await prepareNatural({
    out,
    sources: [photos],
    heldoutClips: 2,
    frames: 5,
    size: 32,
    log: (l) => logs.push(l),
  });
  return { m, logs };
})();

test('photo splits are fixed by name', () => {
  assert.deepEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p9'].map(photoSplit), [
    'train',
    'train',
    'train',
    'test',
    'train',
    'test',
  ]);
});

test('findPhotos keeps one picture per KDE wallpaper (the largest) and skips screenshots', () => {
  const found = findPhotos([photos]);
  assert.deepEqual(
    found.map((f) => f.name),
    ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p9'],
  );
  assert.ok(found.find((f) => f.name === 'p4')!.path.endsWith('80x64.png'));
  assert.throws(() => findPhotos([join(dir, 'nope')]), /no such folder of photos/);
});

test(
  'prepare natural: photos decoded at the working size, ' +
    'undecodable ones reported and skipped, held-out clips written',
  async () => {
    const { m, logs } = await ready;
    assert.equal(m.photos.length, 6);
    assert.ok(logs.some((l) => l.includes('p5.jpg')));
    assert.deepEqual(
      m.photos.filter((p) => p.split === 'test').map((p) => p.name),
      ['p3', 'p9'],
    );
    for (const p of m.photos) assert.equal(Math.min(p.width, p.height), m.shortSide);
    assert.deepEqual(readManifest(out), m);
    const clip = await readClip(join(out, m.heldout!.files[1]!), 5);
    assert.equal(clip.length, 5);
    assert.equal(clip[0]!.width, 32);
  },
);

test('clips render deterministically, move, and each split uses only its own photos', async () => {
  await ready;
  const train = new NaturalClips({ root: out, split: 'train', frames: 6, height: 24, width: 32, length: 40, seed: 3 });
  const test_ = new NaturalClips({ root: out, split: 'test', frames: 6, height: 24, width: 32, length: 40, seed: 3 });
  assert.deepEqual(train.shape, { channels: 3, frames: 6, height: 24, width: 32 });
  const a = train.get(5, 0).data;
  assert.equal(a.length, 6 * 24 * 32 * 3);
  assert.deepEqual(train.get(5, 0).data, a);
  assert.notDeepEqual(train.get(5, 1).data, a);
  assert.deepEqual(test_.get(5, 0).data, test_.get(5, 7).data);
  let moving = 0,
    trainBlue = 0,
    testBlue = 0;
  for (let i = 0; i < 40; i++) {
    const c = train.get(i).data,
      t = test_.get(i).data;
    for (let p = 2; p < c.length; p += 3) trainBlue = Math.max(trainBlue, c[p]!);
    for (let p = 2; p < t.length; p += 3) testBlue = Math.max(testBlue, t[p]!);
    const frame = 24 * 32 * 3;
    let diff = 0;
    for (let p = 0; p < frame; p++) diff += Math.abs(c[p]! - c[5 * frame + p]!);
    if (diff / frame > 1) moving++;
  }
  assert.equal(trainBlue, 0, 'a test-split photo leaked into a training clip');
  assert.ok(testBlue >= 140);
  assert.ok(moving >= 25, `only ${moving} of 40 clips change between the first and last frame`);
});

test('a prepared folder is a --data name; the loader worker opens it from its spec', async () => {
  await ready;
  const spec = namedDataset(out, 'test', 16, 5, 0);
  assert.equal(spec.kind, 'natural');
  const ds = openDataset(spec);
  assert.deepEqual(ds.shape, { channels: 3, frames: 5, height: 16, width: 16 });
  assert.equal(ds.length, 64);
});

test('bad natural folders and arguments are clear errors', async () => {
  await ready;
  assert.throws(
    () => new NaturalClips({ root: dir, split: 'train', frames: 5, height: 8, width: 8, length: 4 }),
    (e: unknown) => e instanceof VtokError && /not a folder made by `vtok prepare natural`/.test(e.message),
  );
  const broken = join(dir, 'broken');
  mkdirSync(join(broken, 'photos'), { recursive: true });
  const m = JSON.parse(readFileSync(join(out, MANIFEST), 'utf8'));
  writeFileSync(join(broken, MANIFEST), JSON.stringify(m));
  assert.throws(() => loadPhotos(broken, 'train'), /photo file is missing/);
  for (const p of m.photos) writeFileSync(join(broken, p.file), new Uint8Array(10));
  assert.throws(() => loadPhotos(broken, 'train'), /has 10 bytes, expected/);
  writeFileSync(join(broken, MANIFEST), JSON.stringify({ ...m, version: 7 }));
  assert.throws(() => readManifest(broken), /manifest version 7 is not supported/);
  writeFileSync(join(broken, MANIFEST), '{"format": "vtok-natural", ');
  assert.throws(() => readManifest(broken), /not valid JSON/);
  assert.throws(() => renderNaturalClip([], new SeededRng(1), 5, 8, 8), /no photos/);
  assert.ok(existsSync(join(out, 'heldout')));
  const empty = join(dir, 'empty');
  mkdirSync(empty, { recursive: true });
  await assert.rejects(prepareNatural({ out: join(dir, 'x'), sources: [empty] }), /found 0 photos; need at least 2/);
});
