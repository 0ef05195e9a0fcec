import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runFfmpeg } from '../../src/io/ffmpeg.js';
import { openTokenFile, writeTokenFile } from '../../src/io/tokenfile.js';
import { readAllFrames } from '../../src/io/video.js';
import { writeCurves } from '../../src/train/curves.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

/**
 * The corpus of bad inputs a new user tried: every case gives one clear line naming the option or file, a non-zero
 * exit, and changes no file in the working folder; plus the cases that must now work (stdout, --gray, grids).
 */
const SHIPPED = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const dir = tempDir('reliab');

/** Every file under `root` with its size and mtime: what a failing command must leave as it was. */
function snapshot(root: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false }) ?? { isDirectory: () => false, size: -1, mtimeMs: 0 };
      if (st.isDirectory()) walk(p);
      out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(root);
  return out.join('\n');
}

const files = (async () => {
  const clip = await makeTestVideo(join(dir, 'clip.mp4'), { frames: 6, args: ['-pix_fmt', 'yuv420p'] });
  const gray = await makeTestVideo(join(dir, 'gray.mp4'), { frames: 6, args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'] });
  const seventeen = await makeTestVideo(join(dir, 'seventeen.mp4'), { frames: 17, args: ['-pix_fmt', 'yuv420p'] });
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'not a folder');
  const aDir = join(dir, 'a-dir');
  mkdirSync(aDir);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  execFileSync('mkfifo', [`${fifo}.png`]);
  const tokens = join(dir, 'tok.vtok');
  writeTokenFile(tokens, { kind: 'magvit2', configHash: 'abc123', vocabSize: 1024, grid: [2, 3, 3], modality: 'video', source: { fps: 8, frameSize: [48, 64] }, extra: { model: SHIPPED } }, [Int32Array.from({ length: 18 }, (_, i) => i)]);
  // tokenize and info: a video that is no list, a list of missing files, a text file named .png, a file with sound only
  const binary = join(dir, 'clip.bin');
  copyFileSync(clip, binary);
  const missingList = join(dir, 'missing.txt');
  writeFileSync(missingList, 'nope-1.mp4\nnope-2.mp4\n');
  const textPng = join(dir, 'text.png');
  writeFileSync(textPng, 'hello, not an image\n');
  const audio = join(dir, 'audio.m4a');
  const made = await runFfmpeg(['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', audio]);
  assert.equal(made.code, 0, made.stderr);
  return { clip, gray, seventeen, aFile, aDir, fifo, tokens, binary, missingList, textPng, audio };
})();

test('bad inputs: one line naming the problem, non-zero exit, nothing written', async () => {
  const f = await files;
  const enc = ['encode', f.clip, '--model', SHIPPED];
  const cases: [string[], RegExp][] = [
    [['train', 'magvit2', '--lr', 'abc', '--out', join(dir, 'r')], /--lr must be a number > 0 and ≤ 1, got "abc"/],
    [['train', 'magvit2', '--lr', '-1', '--out', join(dir, 'r')], /--lr must be a number > 0 and ≤ 1, got "-1"/],
    [['train', 'magvit2', '--bits', '99', '--out', join(dir, 'r')], /--bits must be an integer ≥ 1 and ≤ 24, got "99"/],
    [['train', 'magvit2', '--steps', '0', '--out', join(dir, 'r')], /--steps must be an integer ≥ 1/],
    [['train', 'magvit2', '--seed', 'x', '--out', join(dir, 'r')], /--seed must be an integer ≥ 0/],
    [['train', 'magvit2', '--tokens', '32', '--out', join(dir, 'r')], /--tokens applies to larp only, not magvit2/],
    [['train', 'magvit2', '--no-prior', '--out', join(dir, 'r')], /--no-prior applies to larp only, not magvit2/],
    [['train', 'larp', '--bits', '12', '--out', join(dir, 'r')], /--bits applies to magvit2 only, not larp/],
    [['train', 'magvit2', '--out', f.aFile], /a-file: --out must be a folder; this is a file/],
    [[...enc, '-o', join(dir, 'x.vtok'), '--size', 'abc'], /--size must be an integer ≥ 8 and ≤ 4096, got "abc"/],
    [[...enc, '-o', join(dir, 'x.vtok'), '--size', '100000'], /--size must be an integer ≥ 8 and ≤ 4096, got "100000"/],
    [[...enc, '-o', join(dir, 'x.vtok'), '--size', '50'], /frame size 50 is not a multiple of the tokenizer's spatial stride 4 \(try --size 48 or 52\)/],
    [[...enc, '-o', f.aDir], /a-dir: output is a directory, not a regular file; refusing to replace it/],
    [[...enc, '-o', f.fifo], /fifo: output is a FIFO, not a regular file; refusing to replace it; use -o - to write to standard output/],
    [[...enc, '-o', join(f.aFile, 'x.vtok')], /a-file\/x\.vtok: cannot write the output: .*a-file is not a directory/],
    [[...enc, '-o', join(dir, 'x.vtok')], /clip\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/],
    [[...enc, '-o', join(dir, 'x.vtok'), '--precision', 'fp16'], /--precision must be fp32 or int8, got "fp16"/],
    [['decode', f.tokens, '-o', f.aDir], /a-dir: output is a directory/],
    [['decode', f.tokens, '-o', join(f.aFile, 'y.gif')], /y\.gif: cannot write the output/],
    // /proc takes no new files, even from root (for whom permission bits do not apply)
    [['decode', f.tokens, '-o', '/proc/vtok-test.gif'], /\/proc\/vtok-test\.gif: cannot write the output: \/proc is not writable/],
    [['decode', f.tokens, '-o', '-'], /-o - \(standard output\) is not supported here/],
    [['decode', f.tokens, '-o', join(dir, 'y.gif'), '--fps', '0'], /--fps must be a number > 0/],
    [['parity', f.tokens, '--tolerance', 'abc'], /--tolerance must be a number > 0 and ≤ 1, got "abc"/],
    [['parity', f.tokens, '--tolerance', '-1'], /--tolerance must be a number > 0/],
    [['demo', '--clips', '0', '--out', join(dir, 'demo')], /--clips must be an integer ≥ 1 and ≤ 64, got "0"/],
    [['demo', '--out', f.aFile], /a-file: --out must be a folder/],
    [['eval', '--model', SHIPPED, '--clips', '0'], /--clips must be an integer ≥ 1/],
    [['frames', f.clip, '--out', join(dir, 'g.png'), '--size', 'abc'], /--size must be an integer ≥ 2/],
    [['frames', f.clip, '--out', `${f.fifo}.png`], /fifo\.png: output is a FIFO, not a regular file/],
    [['pack', SHIPPED, '--out', f.aFile], /a-file: --out must be a folder/],
    [['train', 'magvit2'], /required option '--out <dir>' not specified \(see --help\)/],
    [['train', 'magvit2', '--out', join(dir, 'r'), '--bogus'], /unknown option '--bogus'/],
    [['nosuch'], /unknown command 'nosuch'/],
    // tokenize: one rule for colour clips and gray models (fitChannels), a video is no list, the queue checked first
    [['tokenize', f.clip, '--out', join(dir, 't')], /clip\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/],
    [['tokenize', '--data', 'captioned-synthetic', '--clips', '2', '--out', join(dir, 't')], /captioned-synthetic:0:0: the clips are in colour .*; add --gray/],
    [['tokenize', f.missingList, '--out', join(dir, 't')], /missing\.txt: none of the 2 files the list names exists \(the first: .*nope-1\.mp4\)/],
    [['tokenize', f.binary, '--out', join(dir, 't')], /clip\.bin: neither a folder, a video \(.*\) nor a list file of video paths \(binary content\)$/],
    [['tokenize', '--data', 'captioned-mnist', '--clips', '2', '--out', join(dir, 't'), '--queue', 'http://localhost/q'], /--queue must be a postgres:\/\/ URL/],
    [['tokenize', '--data', 'captioned-mnist', '--clips', '2', '--out', join(dir, 't'), '--queue', 'postgres://vtok:pw@127.0.0.1:1/postgres'], /cannot use the job queue at postgres:\/\/vtok:\*\*\*@127\.0\.0\.1:1\/postgres/],
    // info: one vtok line, none of ffmpeg's words
    [['info', f.textPng], /text\.png: not a video, image, \.vtok token file or \.safetensors checkpoint$/],
    [['info', f.audio], /audio\.m4a: has no video stream \(audio only\)$/],
  ];
  const before = snapshot(dir);
  for (const [args, re] of cases) {
    const r = await vtok(...args);
    const what = `vtok ${args.join(' ')}`;
    assert.notEqual(r.code, 0, `${what} should fail`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${what}: one line, got:\n${r.stderr}`);
    assert.ok(lines[0]!.startsWith('vtok: '), `${what}: ${lines[0]}`);
    assert.match(lines[0]!, re, what);
    assert.equal(r.stdout, '', what);
    assert.equal(snapshot(dir), before, `${what} changed files`);
  }
});

test('encode: -o - writes the token file to standard output; --gray converts colour and says so; gray video needs no flag', async () => {
  const f = await files;
  const r = await vtok('encode', f.clip, '--model', SHIPPED, '-o', '-', '--gray');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /note: frames 64×48 resized and center-cropped to 64×64 \(the model's training size; --size to change\)/);
  assert.match(r.stderr, /note: colour converted to gray \(--gray\)/);
  assert.match(r.stderr, /→ standard output/);
  const out = join(dir, 'from-stdout.vtok');
  // run-vtok collects stdout as text; take the bytes again with a direct run
  const bytes = execFileSync(process.execPath, [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), 'encode', f.gray, '--model', SHIPPED, '-o', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(out, bytes);
  const tf = await openTokenFile(out);
  let clips = 0;
  for await (const c of tf.clips()) clips += c.ids.length > 0 ? 1 : 0;
  assert.equal(clips, 2);
  assert.equal(tf.header.kind, 'magvit2');
});

test('frames: the default grid of a 17-frame clip shows 16 frames', async () => {
  const f = await files;
  const r = await vtok('frames', f.seventeen, '--out', join(dir, 'grid17.png'), '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).frames, 16);
  const grid = (await readAllFrames(join(dir, 'grid17.png')))[0]!;
  assert.equal(grid.width, 16 * 64 + 15 * 2);
});

test('curves.png: a single-point series is drawn as a mark, not an empty panel', async () => {
  const path = join(dir, 'curves.png');
  writeCurves(path, new Map([['eval/psnr', [{ step: 10, value: 14.2 }]]]));
  const png = (await readAllFrames(path))[0]!;
  // the curve colour appears only where a point is drawn
  let marked = 0;
  for (let i = 0; i < png.width * png.height; i++) if (png.data[3 * i] === 20 && png.data[3 * i + 1] === 70 && png.data[3 * i + 2] === 170) marked++;
  assert.ok(marked >= 25, `${marked} pixels marked`);
});

test('encode: Ctrl-C stops after the clip in progress and leaves no file; a second Ctrl-C too', async () => {
  const long = await makeTestVideo(join(dir, 'long.mp4'), { frames: 80, args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'] });
  for (const presses of [1, 2]) {
    const d = join(dir, `int-${presses}`);
    mkdirSync(d);
    const out = join(d, 'x.vtok');
    const p = spawn(process.execPath, [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), 'encode', long, '--model', SHIPPED, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VTOK_THREADS: '1' } });
    let stderr = '';
    p.stderr.on('data', (b) => (stderr += b));
    // the writer's temp file appears when encoding begins
    while (!readdirSync(d).some((n) => n.endsWith('.tmp'))) await new Promise((r) => setTimeout(r, 20));
    p.kill('SIGINT');
    if (presses === 2) {
      await new Promise((r) => setTimeout(r, 30));
      p.kill('SIGINT');
    }
    const code = await new Promise<number | null>((r) => p.on('close', r));
    assert.equal(code, 130, stderr);
    // with two presses the second may come after the first already stopped the work: either way, nothing is left
    assert.match(stderr, presses === 1 ? /vtok: Ctrl-C: stopped after \d+ clips; .*x\.vtok was not written/ : /SIGINT: stopping now|x\.vtok was not written/);
    assert.deepEqual(readdirSync(d), [], `${presses} Ctrl-C: nothing left behind`);
  }
});
