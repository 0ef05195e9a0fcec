import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTokenFile } from '../../src/io/tokenfile.js';
import { fromFloat32 } from '../../src/io/tensor-data.js';
import { writeSafetensors } from '../../src/io/safetensors-file.js';
import { readAllFrames } from '../../src/io/video.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

const dir = tempDir('cli');

/** Runs a command that must succeed with --json output, and parses it. */
async function json(...args: string[]): Promise<any> {
  const r = await vtok(...args);
  assert.equal(r.code, 0, `vtok ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** A failing command: non-zero exit, one line on stderr naming the file, no stack trace. */
async function fails(args: string[], file: string, re: RegExp): Promise<void> {
  const r = await vtok(...args);
  assert.notEqual(r.code, 0, `vtok ${args.join(' ')} should fail`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one message, got:\n${r.stderr}`);
  assert.ok(lines[0]!.startsWith('vtok: '), lines[0]);
  assert.ok(lines[0]!.includes(file), `names ${file}: ${lines[0]}`);
  assert.match(lines[0]!, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const files = (async () => {
  const mp4 = await makeTestVideo(join(dir, 'clip.mp4'), { frames: 12, args: ['-pix_fmt', 'yuv420p'] });
  const other = await makeTestVideo(join(dir, 'other.mp4'), {
    frames: 12,
    source: 'smptebars',
    args: ['-pix_fmt', 'yuv420p'],
  });
  const big = await makeTestVideo(join(dir, 'big.mp4'), {
    width: 96,
    height: 64,
    frames: 12,
    args: ['-pix_fmt', 'yuv420p'],
  });
  const png = await makeTestVideo(join(dir, 'still.png'), { frames: 1 });
  const empty = join(dir, 'empty.mp4');
  writeFileSync(empty, '');
  const random = join(dir, 'random.mp4');
  writeFileSync(random, Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 2654435761) >>> 24)));
  const randomBin = join(dir, 'random.bin');
  copyFileSync(random, randomBin);
  const truncated = join(dir, 'truncated.mp4');
  writeFileSync(truncated, readFileSync(mp4).subarray(0, 500));
  const tokens = join(dir, 'tok.vtok');
  writeTokenFile(
    tokens,
    {
      modality: 'video',
      kind: 'magvit2',
      configHash: 'abc123',
      vocabSize: 1024,
      grid: [2, 3, 3],
      source: { fps: 8, frameSize: [48, 64] },
    },
    [Int32Array.from({ length: 18 }, (_, i) => i), Int32Array.from({ length: 18 }, (_, i) => (i * 37) % 1024)],
  );
  const ckpt = join(dir, 'model.safetensors');
  writeSafetensors(
    ckpt,
    new Map([
      ['encoder.conv.weight', fromFloat32(new Float32Array(2 * 3 * 3), [2, 1, 3, 3])],
      ['bias', fromFloat32(new Float32Array(2), [2])],
    ]),
  );
  return { mp4, other, big, png, empty, random, randomBin, truncated, tokens, ckpt };
})();

test('vtok info: videos, images, token files and checkpoints, as text and JSON', async () => {
  const f = await files;
  const v = await json('info', f.mp4, '--json');
  assert.deepEqual([v.kind, v.width, v.height, v.fps, v.frames], ['video', 64, 48, 10, 12]);
  const img = await json('info', f.png, '--json');
  assert.deepEqual([img.isImage, img.frames], [true, 1]);
  const t = await json('info', f.tokens, '--json');
  assert.deepEqual(
    [t.kind, t.clips, t.tokens, t.bitsPerToken, t.header.kind, t.header.grid],
    ['tokens', 2, 36, 10, 'magvit2', [2, 3, 3]],
  );
  assert.ok(t.codebook.used > 18 && t.codebook.perplexity > 18);
  const c = await json('info', f.ckpt, '--json');
  assert.deepEqual(
    c.tensors.find((x: { name: string }) => x.name === 'encoder.conv.weight'),
    { name: 'encoder.conv.weight', dtype: 'F32', shape: [2, 1, 3, 3] },
  );
  assert.equal(c.parameters, 20);
  const text = await vtok('info', f.tokens);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /tokenizer magvit2/);
  assert.match(text.stdout, /vocabulary 1024 \(10 bits per token\)/);
  assert.match((await vtok('info', f.mp4)).stdout, /size\s+64×48/);
});

test('vtok info reads mislabelled files by content', async () => {
  const f = await files;
  const tokAsMp4 = join(dir, 'tokens-really.mp4');
  copyFileSync(f.tokens, tokAsMp4);
  assert.equal((await json('info', tokAsMp4, '--json')).kind, 'tokens');
  const videoAsVtok = join(dir, 'video-really.vtok');
  copyFileSync(f.mp4, videoAsVtok);
  assert.equal((await json('info', videoAsVtok, '--json')).kind, 'video');
  const pngAsMp4 = join(dir, 'png-really.mp4');
  copyFileSync(f.png, pngAsMp4);
  assert.equal((await json('info', pngAsMp4, '--json')).isImage, true);
});

test('vtok info on bad files: one clear message naming the file, non-zero exit', async () => {
  const f = await files;
  await fails(['info', f.empty], f.empty, /file is empty/);
  await fails(['info', f.random], f.random, /not a video, image, .vtok token file or .safetensors checkpoint/);
  await fails(['info', f.randomBin], f.randomBin, /not a video, image/);
  await fails(['info', f.truncated], f.truncated, /not a video|could not count|decoding failed/);
  await fails(['info', join(dir, 'missing.mp4')], 'missing.mp4', /no such file/);
  await fails(['info', dir], dir, /is a directory/);
  const tokBytes = readFileSync(f.tokens);
  const cut = join(dir, 'cut.vtok');
  writeFileSync(cut, tokBytes.subarray(0, tokBytes.length - 20));
  await fails(['info', cut], cut, /truncated/);
  const flipped = join(dir, 'flipped.vtok');
  const b = Buffer.from(tokBytes);
  b[b.length - 30]! ^= 1;
  writeFileSync(flipped, b);
  await fails(['info', flipped], flipped, /CRC32 mismatch/);
  const ckptCut = join(dir, 'cut.safetensors');
  writeFileSync(ckptCut, readFileSync(f.ckpt).subarray(0, 60));
  await fails(['info', ckptCut], ckptCut, /truncat|header|exceeds|expected/i);
});

test('vtok frames: PNG folder, grid and video outputs with resize and crop', async () => {
  const f = await files;
  const out = join(dir, 'pngs');
  const r = await vtok(
    'frames',
    f.mp4,
    '--out',
    out,
    '--size',
    '32',
    '--crop',
    '40x32',
    '--frames',
    '5',
    '--stride',
    '2',
    '--json',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { input: f.mp4, out, kind: 'pngs', frames: 5, width: 40, height: 32 });
  assert.equal(readdirSync(out).filter((x) => x.endsWith('.png')).length, 5);
  const grid = join(dir, 'grid.png');
  const g = await json('frames', f.mp4, '--out', grid, '--frames', '4', '--columns', '2', '--json');
  assert.equal(g.frames, 4);
  const img = (await readAllFrames(grid))[0]!;
  assert.deepEqual([img.width, img.height], [2 * 64 + 2, 2 * 48 + 2]);
  const gif = join(dir, 'half.gif');
  assert.equal((await json('frames', f.mp4, '--out', gif, '--fps', '5', '--json')).frames, 6);
  assert.equal((await readAllFrames(gif)).length, 6);
});

test('vtok frames on bad input or options fails clearly and writes nothing', async () => {
  const f = await files;
  const out = join(dir, 'never');
  await fails(['frames', f.random, '--out', out], f.random, /not a video or image/);
  await fails(['frames', f.empty, '--out', out], f.empty, /file is empty/);
  await fails(['frames', f.mp4, '--out', out, '--crop', 'abc'], '--crop', /must be N or WxH/);
  await fails(['frames', f.mp4, '--out', out, '--crop', '500'], f.mp4, /cannot center-crop/);
  await fails(['frames', f.mp4, '--out', join(dir, 'x.txt')], 'x.txt', /--out must be a folder/);
  assert.equal(existsSync(out), false);
});

test('vtok metrics: identical, different and resized videos; mismatches are clear errors', async () => {
  const f = await files;
  const same = await json('metrics', f.mp4, f.mp4, '--json');
  assert.deepEqual([same.frames, same.psnr, same.ssim], [12, 100, 1]);
  const diff = await json('metrics', f.mp4, f.other, '--json', '--per-frame');
  assert.ok(diff.psnr < 20 && diff.ssim < 0.8, JSON.stringify(diff));
  assert.equal(diff.perFrame.length, 12);
  // A lossy copy is close but not identical.
  const lossy = join(dir, 'lossy.mp4');
  await makeTestVideo(lossy, { frames: 12, args: ['-pix_fmt', 'yuv420p', '-crf', '35'] });
  const close = await json('metrics', f.mp4, lossy, '--json');
  assert.ok(close.psnr > 20 && close.psnr < 100 && close.ssim > 0.8 && close.ssim < 1, JSON.stringify(close));
  const text = await vtok('metrics', f.mp4, lossy, '--frames', '3');
  assert.match(text.stdout, /^3 frames of 64×48: PSNR \d+\.\d\d dB, SSIM 0\.\d{4}$/m);
  await fails(['metrics', f.mp4, f.big], f.big, /frame sizes differ/);
  assert.equal((await json('metrics', f.mp4, f.big, '--size', '48', '--crop', '48', '--json')).frames, 12);
  await fails(['metrics', f.mp4, f.random], f.random, /not a video or image/);
  await fails(['metrics', f.empty, f.mp4], f.empty, /file is empty/);
});
