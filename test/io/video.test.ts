import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ffmpegPath, hasEncoder } from '../../src/io/ffmpeg.js';
import {
  probeVideo,
  readAllFrames,
  readClip,
  readFrames,
  readLastFrames,
  writeGrid,
  writePngSequence,
  writeVideo,
} from '../../src/io/video.js';
import { clipsToTensor, gridFrame, tensorToClips, type Frame } from '../../src/io/frame.js';
import { psnr } from '../../src/metrics/psnr.js';
import { makeTestVideo, tempDir } from './fixtures.js';

const dir = tempDir('video');

/** A clip whose frame t is a flat colour plus a moving bright square: easy to check after lossy coding. */
function synthFrames(n: number, w: number, h: number): Frame[] {
  const frames: Frame[] = [];
  for (let t = 0; t < n; t++) {
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        const inSquare = x >= 4 + t * 2 && x < 16 + t * 2 && y >= 8 && y < 20;
        data[i] = inSquare ? 250 : 40 + 4 * t;
        data[i + 1] = inSquare ? 250 : (x * 4) & 255;
        data[i + 2] = inSquare ? 250 : (y * 4) & 255;
      }
    }
    frames.push({ width: w, height: h, data });
  }
  return frames;
}

test('the bundled ffmpeg is found and has the encoders vtok uses', () => {
  assert.ok(existsSync(ffmpegPath()) || ffmpegPath() === 'ffmpeg');
  assert.ok(hasEncoder('libx264') || hasEncoder('mpeg4'));
  assert.ok(hasEncoder('gif'));
});

test('every supported container decodes with the right size, rate and frame count', async () => {
  const cases: [string, string[]][] = [
    ['a.mp4', ['-pix_fmt', 'yuv420p']],
    ['a.webm', []],
    ['a.mkv', []],
    ['a.avi', []],
    ['a.gif', []],
    ['a.y4m', ['-pix_fmt', 'yuv420p']],
  ];
  for (const [name, args] of cases) {
    const p = await makeTestVideo(join(dir, name), { args });
    const info = await probeVideo(p);
    assert.deepEqual([info.width, info.height, info.fps, info.frames, info.isImage], [64, 48, 10, 10, false], name);
    assert.equal((await probeVideo(p, { exact: true })).frames, 10, name);
    const frames = await readAllFrames(p);
    assert.equal(frames.length, 10, name);
    assert.equal(frames[0]!.data.length, 64 * 48 * 3);
    assert.notDeepEqual(frames[0]!.data, frames[5]!.data, `${name}: frames differ`);
  }
  for (const name of ['a.png', 'a.jpg']) {
    const p = await makeTestVideo(join(dir, name), { frames: 1 });
    const info = await probeVideo(p);
    assert.deepEqual([info.width, info.height, info.frames, info.isImage], [64, 48, 1, true], name);
    const frames = await readAllFrames(p, { fps: 8 });
    assert.equal(frames.length, 1, `${name} is a 1-frame video`);
  }
});

test('clip extraction: resampling, start frame, stride and length pick the right frames', async () => {
  // Lossless source so frames can be compared exactly.
  const src = await makeTestVideo(join(dir, 'ref.mkv'), { fps: 10, frames: 20, args: ['-c:v', 'ffv1'] });
  const all = await readAllFrames(src);
  assert.equal(all.length, 20);
  const clip = await readClip(src, 4, { startFrame: 3, stride: 2 });
  assert.equal(clip.length, 4);
  clip.forEach((f, i) => {
    assert.deepEqual(f.data, all[3 + 2 * i]!.data, `clip frame ${i} is source frame ${3 + 2 * i}`);
  });
  // Seeking by time: 1.0 s at 10 fps is frame 10.
  const seek = await readClip(src, 2, { start: 1.0 });
  assert.deepEqual(seek[0]!.data, all[10]!.data);
  // Resampling 10 → 5 fps keeps every other frame and halves the count.
  const half = await readAllFrames(src, { fps: 5 });
  assert.equal(half.length, 10);
  assert.deepEqual(half[3]!.data, all[6]!.data);
  const double = await readAllFrames(src, { fps: 20 });
  assert.ok(double.length >= 39 && double.length <= 40, `${double.length} frames at 20 fps`);
  // Too short without pad is an error naming the file; with pad the last frame repeats.
  await assert.rejects(readClip(src, 30), (e: Error) => e.message.startsWith(src) && /needs 30/.test(e.message));
  const padded = await readClip(src, 25, { pad: true });
  assert.equal(padded.length, 25);
  assert.deepEqual(padded[24]!.data, all[19]!.data);
});

test('short-side resize and center crop produce the requested size and content', async () => {
  const src = await makeTestVideo(join(dir, 'wide.mkv'), { width: 96, height: 48, frames: 2, args: ['-c:v', 'ffv1'] });
  const resized = await readAllFrames(src, { size: 24 });
  assert.deepEqual([resized[0]!.width, resized[0]!.height], [48, 24]);
  const cropped = await readAllFrames(src, { crop: [32, 40] });
  assert.deepEqual([cropped[0]!.width, cropped[0]!.height], [40, 32]);
  // The crop is the centre of the full frame: compare against a crop done by hand.
  const full = (await readAllFrames(src))[0]!;
  const x0 = (96 - 40) / 2;
  const y0 = (48 - 32) / 2;
  for (const [y, x] of [
    [0, 0],
    [10, 17],
    [31, 39],
  ] as const) {
    const a = cropped[0]!.data.subarray((y * 40 + x) * 3, (y * 40 + x) * 3 + 3);
    const b = full.data.subarray(((y + y0) * 96 + x + x0) * 3, ((y + y0) * 96 + x + x0) * 3 + 3);
    assert.deepEqual(a, b);
  }
  const both = await readAllFrames(src, { size: 32, crop: 32 });
  assert.deepEqual([both[0]!.width, both[0]!.height], [32, 32]);
  await assert.rejects(readAllFrames(src, { crop: [64, 64] }), /cannot center-crop/);
});

test('streaming: breaking out early stops ffmpeg and a long video is read frame by frame', async () => {
  const src = await makeTestVideo(join(dir, 'long.mp4'), { frames: 300, fps: 30, args: ['-pix_fmt', 'yuv420p'] });
  let n = 0;
  for await (const f of readFrames(src)) {
    assert.equal(f.data.length, 64 * 48 * 3);
    if (++n === 3) break;
  }
  assert.equal(n, 3);
});

test("the last frames of a video, read from a seek near its end, are the whole decode's last frames", async () => {
  const mp4 = await makeTestVideo(join(dir, 'tail.mp4'), { frames: 300, fps: 30, args: ['-pix_fmt', 'yuv420p'] });
  const mkv = await makeTestVideo(join(dir, 'tail.mkv'), { frames: 40, fps: 10, args: ['-c:v', 'ffv1'] });
  const gif = await makeTestVideo(join(dir, 'tail.gif'), { frames: 30, fps: 10 });
  for (const [src, n] of [
    [mp4, 5],
    [mp4, 1],
    [mkv, 3],
    [gif, 4],
    [mkv, 60],
  ] as const) {
    const all = await readAllFrames(src);
    const last = await readLastFrames(src, n);
    assert.equal(last.length, Math.min(n, all.length), `${src}: ${n}`);
    last.forEach((f, i) => {
      assert.ok(Buffer.from(f.data).equals(Buffer.from(all[all.length - last.length + i]!.data)), `${src} ${n}: ${i}`);
    });
  }
  const [crop] = await readLastFrames(mkv, 1, { crop: 32 });
  assert.deepEqual([crop!.width, crop!.height], [32, 32]);
  await assert.rejects(readLastFrames(mkv, 0), /frame count must be a positive integer, got 0/);
});

test('encode → decode round trips: mp4, webm, mkv, avi, y4m close to the source, gif recognisable', async () => {
  const frames = synthFrames(8, 64, 48);
  for (const [ext, minPsnr] of [
    ['mp4', 35],
    ['webm', 30],
    ['mkv', 35],
    ['avi', 28],
    ['y4m', 38],
    ['gif', 22],
  ] as const) {
    const p = join(dir, `rt.${ext}`);
    assert.equal(await writeVideo(p, frames, { fps: 8 }), 8);
    const info = await probeVideo(p, { exact: true });
    assert.deepEqual([info.width, info.height, info.frames], [64, 48, 8], ext);
    // GIF delays are whole centiseconds, so 8 fps (12.5 cs) can only be approximated.
    if (ext === 'gif') assert.ok(Math.abs(info.fps - 8) < 0.5, `gif fps ${info.fps}`);
    else assert.equal(info.fps, 8, ext);
    const back = await readAllFrames(p);
    assert.equal(back.length, 8, ext);
    for (let t = 0; t < 8; t++) {
      const q = psnr(frames[t]!.data, back[t]!.data);
      assert.ok(q > minPsnr, `${ext} frame ${t}: PSNR ${q.toFixed(1)} dB`);
    }
  }
  // Odd sizes keep full chroma instead of failing.
  const odd = join(dir, 'odd.mp4');
  await writeVideo(odd, synthFrames(3, 33, 21));
  assert.deepEqual([(await probeVideo(odd)).width, (await probeVideo(odd)).height], [33, 21]);
  assert.deepEqual(
    readdirSync(dir).filter((x) => x.endsWith('.tmp')),
    [],
  );
});

test('writeVideo rejects mismatched frames and unknown extensions without leaving files', async () => {
  const frames = synthFrames(3, 32, 32);
  frames.push(synthFrames(1, 16, 16)[0]!);
  await assert.rejects(writeVideo(join(dir, 'mixed.mp4'), frames), /frame 3 is 16×16, expected 32×32/);
  assert.equal(existsSync(join(dir, 'mixed.mp4')), false);
  await assert.rejects(writeVideo(join(dir, 'x.mov'), frames), /cannot write video with extension '.mov'/);
  await assert.rejects(writeVideo(join(dir, 'none.mp4'), []), /no frames to write/);
  assert.deepEqual(
    readdirSync(dir).filter((x) => x.endsWith('.tmp')),
    [],
  );
});

test('PNG sequences and grids are lossless and decode back exactly', async () => {
  const frames = synthFrames(5, 20, 12);
  const paths = await writePngSequence(join(dir, 'seq'), frames);
  assert.equal(paths.length, 5);
  for (let i = 0; i < 5; i++) assert.deepEqual((await readAllFrames(paths[i]!))[0]!.data, frames[i]!.data);
  const grid = join(dir, 'grid.png');
  writeGrid(grid, frames, { columns: 3, gap: 1 });
  const g = (await readAllFrames(grid))[0]!;
  assert.deepEqual([g.width, g.height], [3 * 20 + 2, 2 * 12 + 1]);
  assert.deepEqual(g.data, gridFrame(frames, { columns: 3, gap: 1 }).data);
  // Frame 4 sits at row 1, column 1.
  const px = (x: number, y: number) => [...g.data.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3)];
  assert.deepEqual(px(21 + 5, 13 + 9), [...frames[4]!.data.subarray((9 * 20 + 5) * 3, (9 * 20 + 5) * 3 + 3)]);
  assert.equal(readFileSync(grid).subarray(1, 4).toString(), 'PNG');
});

test('bad inputs give one clear error naming the file', async () => {
  const empty = join(dir, 'empty.mp4');
  writeFileSync(empty, '');
  const junk = join(dir, 'junk.mp4');
  writeFileSync(junk, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
  const good = await makeTestVideo(join(dir, 'trunc-src.mp4'), { frames: 10, args: ['-pix_fmt', 'yuv420p'] });
  const trunc = join(dir, 'trunc.mp4');
  writeFileSync(trunc, readFileSync(good).subarray(0, 600));
  for (const [p, re] of [
    [empty, /file is empty/],
    [junk, /not a video or image ffmpeg can read/],
    [trunc, /not a video or image ffmpeg can read|no frames|decoding failed/],
    [join(dir, 'missing.mp4'), /no such file/],
    [dir, /is a directory/],
  ] as const) {
    await assert.rejects(
      readAllFrames(p),
      (e: Error) => e.name === 'VtokError' && e.message.startsWith(p) && re.test(e.message),
      p,
    );
  }
});

test('clips ↔ [-1,1] tensors: layout N×C×T×H×W and an exact round trip', () => {
  const a = synthFrames(3, 5, 4);
  const b = synthFrames(3, 5, 4).map((f) => ({ ...f, data: f.data.map((v) => 255 - v) }));
  const t = clipsToTensor([a, b]);
  assert.deepEqual(t.shape, [2, 3, 3, 4, 5]);
  // Element (n=1, c=2, t=1, y=3, x=4) is clip b, frame 1, pixel (3,4), blue.
  const v = t.data[(((1 * 3 + 2) * 3 + 1) * 4 + 3) * 5 + 4]!;
  assert.equal(v, Math.fround(b[1]!.data[(3 * 5 + 4) * 3 + 2]! / 127.5 - 1));
  assert.ok(t.data.every((x) => x >= -1 && x <= 1));
  const back = tensorToClips(t.data, t.shape);
  assert.deepEqual(
    back[0]!.map((f) => f.data),
    a.map((f) => f.data),
  );
  assert.deepEqual(
    back[1]!.map((f) => f.data),
    b.map((f) => f.data),
  );
  // Out-of-range values clamp.
  const c = tensorToClips(
    new Float32Array([-3, 3, 0]).map((x) => x),
    [1, 1, 3, 1, 1],
  );
  assert.deepEqual(
    c[0]!.map((f) => f.data[0]),
    [0, 255, 128],
  );
});
