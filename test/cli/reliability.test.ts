import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  createReadStream,
  linkSync,
  mkdirSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import '../../src/engine/index.js'; // installs the Node backend
import { runFfmpeg } from '../../src/io/ffmpeg.js';
import { hashConfig, openTokenFile, type TokenFileHeader, writeTokenFile } from '../../src/io/tokenfile.js';
import { buildIndex, writeIndex, writeShard } from '../../src/corpus/shards.js';
import { readAllFrames } from '../../src/io/video.js';
import { loadTensors, saveTensors } from '../../src/nn/weights-file.js';
import { buildTokenizer } from '../../src/tokenizers/load.js';
import { writeCurves } from '../../src/train/curves.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { MAIN, vtok } from './run-vtok.js';

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

/** A token file header for the shipped tokenizer (clips of 5 frames of 64×64). */
const { tokenizer: shipped } = buildTokenizer(SHIPPED);
const grid = shipped.grid([1, shipped.clipFrames, 64, 64]).shape;
const gridSize = grid.reduce((a, b) => a * b, 1);
const shippedHeader = (): TokenFileHeader => ({
  kind: 'magvit2',
  configHash: hashConfig(shipped.config),
  vocabSize: shipped.vocabSize,
  grid,
  modality: 'video',
  source: { fps: 8, frameSize: [64, 64] },
  extra: { model: SHIPPED },
});

const files = (async () => {
  const clip = await makeTestVideo(join(dir, 'clip.mp4'), { frames: 6, args: ['-pix_fmt', 'yuv420p'] });
  const gray = await makeTestVideo(join(dir, 'gray.mp4'), {
    frames: 6,
    args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'],
  });
  const seventeen = await makeTestVideo(join(dir, 'seventeen.mp4'), { frames: 17, args: ['-pix_fmt', 'yuv420p'] });
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'not a folder');
  const aDir = join(dir, 'a-dir');
  mkdirSync(aDir);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  execFileSync('mkfifo', [`${fifo}.png`]);
  const tokens = join(dir, 'tok.vtok');
  // token shards without class labels (train lm)
  const shards = join(dir, 'shards');
  mkdirSync(shards);
  const clips = [0, 1, 2, 3].map((i) => ({ source: `s:${i}`, ids: new Int32Array(18).fill(i), grid: [2, 3, 3] }));
  writeShard(join(shards, 'shard-00000000.vtks'), 16, clips);
  const tokenizer = { kind: 'magvit2', vocabSize: 16, identity: 'test' };
  writeIndex(shards, buildIndex(shards, { tokenizer, clipFrames: 2, size: 12, channels: 1, corpus: 'test' }));
  writeTokenFile(
    tokens,
    {
      kind: 'magvit2',
      configHash: 'abc123',
      vocabSize: 1024,
      grid: [2, 3, 3],
      modality: 'video',
      source: { fps: 8, frameSize: [48, 64] },
      extra: { model: SHIPPED },
    },
    [Int32Array.from({ length: 18 }, (_, i) => i)],
  );
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
  // the input under other names: a symlink and a hard link
  const clipLink = join(dir, 'clip-link.mp4');
  symlinkSync(clip, clipLink);
  const clipHard = join(dir, 'clip-hard.mp4');
  linkSync(clip, clipHard);
  // the shipped tokenizer with NaN in two weights, and a token file that records it as its model
  const nanModel = join(dir, 'nan-model');
  cpSync(SHIPPED, nanModel, { recursive: true });
  const weightsFile = join(nanModel, 'checkpoints', 'step-0000000', 'model.safetensors');
  const { tensors, metadata } = loadTensors(weightsFile);
  for (const name of [...tensors.keys()].slice(0, 2)) (tensors.get(name)!.data as Float32Array)[0] = NaN;
  saveTensors(weightsFile, tensors, metadata);
  const nanTokens = join(dir, 'nan.vtok');
  writeTokenFile(nanTokens, { ...shippedHeader(), extra: { model: nanModel } }, [new Int32Array(gridSize)]);
  return {
    clip,
    gray,
    seventeen,
    aFile,
    aDir,
    fifo,
    tokens,
    binary,
    missingList,
    textPng,
    audio,
    clipLink,
    clipHard,
    nanModel,
    nanTokens,
    shards,
  };
})();

const NAN = new RegExp(
  'nan-model/checkpoints/step-0000000/model\\.safetensors: weight \\S+ holds NaN at index 0; ' +
    'so do \\S+ \\(damaged weights, or a training run that diverged\\)$',
);

test('bad inputs: one line naming the problem, non-zero exit, nothing written', async () => {
  const f = await files;
  const enc = ['encode', f.clip, '--model', SHIPPED];
  const t2v = ['generate', '--task', 't2v', '--prompt', 'a 4'],
    g = join(dir, 'g.mp4');
  const lm = (mixture: string) => ['train', 'lm', '--shards', f.shards, '--mixture', mixture, '--out', join(dir, 'lm')];
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
    [
      [...enc, '-o', join(dir, 'x.vtok'), '--size', '50'],
      /frame size 50 is not a multiple of the tokenizer's spatial stride 4 \(try --size 48 or 52\)/,
    ],
    [[...enc, '-o', f.aDir], /a-dir: output is a directory, not a regular file; refusing to replace it/],
    [
      [...enc, '-o', f.fifo],
      /fifo: output is a FIFO, not a regular file; refusing to replace it; use -o - to write to standard output/,
    ],
    [[...enc, '-o', join(f.aFile, 'x.vtok')], /a-file\/x\.vtok: cannot write the output: .*a-file is not a directory/],
    [
      [...enc, '-o', join(dir, 'x.vtok')],
      /clip\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/,
    ],
    [[...enc, '-o', join(dir, 'x.vtok'), '--precision', 'fp16'], /--precision must be fp32 or int8, got "fp16"/],
    [['decode', f.tokens, '-o', f.aDir], /a-dir: output is a directory/],
    [['decode', f.tokens, '-o', join(f.aFile, 'y.gif')], /y\.gif: cannot write the output/],
    // /proc takes no new files, even from root (for whom permission bits do not apply)
    [
      ['decode', f.tokens, '-o', '/proc/vtok-test.gif'],
      /\/proc\/vtok-test\.gif: cannot write the output: \/proc is not writable/,
    ],
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
    // generate: an option the task would ignore, or an output it cannot write, is refused before any work
    [[...t2v, '--label', '3', '-o', g], /task t2v takes no --label \(it takes: --prompt, --seconds, --cond-frames\)/],
    [['generate', '--task', 'uncond', '--image', f.clip, '-o', g], /task uncond takes no --image \(it takes: --sec/],
    [[...t2v, '--video', f.clip, '-o', g], /task t2v takes no --video/],
    [[...t2v, '--task', 'class', '--label', '1', '-o', g], /task class takes no --prompt \(it takes: --label/],
    [['generate', '--task', 'i2v', '--image', f.clip, '--video', f.clip, '-o', g], /task i2v takes no --video/],
    [[...t2v, '--task', 't2i', '--seconds', '2', '-o', g], /task t2i takes no --seconds \(it takes: --prompt\)$/],
    [[...t2v, '--cond-frames', '2', '-o', g], /task t2v takes no --cond-frames without --seconds/],
    [[...t2v, '-o', join(dir, 'g.mov')], /g\.mov: -o must end in \.mp4, \.mkv, \.webm, .*\.png, not \.mov$/],
    [[...t2v, '-o', join(dir, 'g')], /g: -o must end in \.mp4, .* \(it has no extension\)$/],
    [[...t2v, '-o', join(dir, 'g.txt')], /g\.txt: -o must end in .*, not \.txt$/],
    // train lm: a mixture that says nothing, names a task twice or weighs it infinitely; class on unlabelled data
    [lm(''), /--mixture is empty: give task=weight pairs/],
    [lm('t2v=1,fp=1,t2v=2'), /--mixture names task t2v twice/],
    [lm('t2v=1e400'), /--mixture: the weight of t2v must be a finite number, got 1e400/],
    [lm('uncond=1,class=1'), /shards: task class needs class labels, and no clip of these shards has one/],
    [['train', 'magvit2'], /required option '--out <dir>' not specified \(see --help\)/],
    [['train', 'magvit2', '--out', join(dir, 'r'), '--bogus'], /unknown option '--bogus'/],
    [['nosuch'], /unknown command 'nosuch'/],
    // tokenize: one rule for colour clips and gray models (fitChannels), a video is no list, the queue checked first
    [
      ['tokenize', f.clip, '--out', join(dir, 't')],
      /clip\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/,
    ],
    [
      ['tokenize', '--data', 'captioned-synthetic', '--clips', '2', '--out', join(dir, 't')],
      /captioned-synthetic:0:0: the clips are in colour .*; add --gray/,
    ],
    [
      ['tokenize', f.missingList, '--out', join(dir, 't')],
      /missing\.txt: none of the 2 files the list names exists \(the first: .*nope-1\.mp4\)/,
    ],
    [
      ['tokenize', f.binary, '--out', join(dir, 't')],
      /clip\.bin: neither a folder, a video \(.*\) nor a list file of video paths \(binary content\)$/,
    ],
    [
      [
        'tokenize',
        '--data',
        'captioned-mnist',
        '--clips',
        '2',
        '--out',
        join(dir, 't'),
        '--queue',
        'http://localhost/q',
      ],
      /--queue must be a postgres:\/\/ URL/,
    ],
    [
      [
        'tokenize',
        '--data',
        'captioned-mnist',
        '--clips',
        '2',
        '--out',
        join(dir, 't'),
        '--queue',
        'postgres://vtok:pw@127.0.0.1:1/postgres',
      ],
      /cannot use the job queue at postgres:\/\/vtok:\*\*\*@127\.0\.0\.1:1\/postgres/,
    ],
    // info: one vtok line, none of ffmpeg's words
    [['info', f.textPng], /text\.png: not a video, image, \.vtok token file or \.safetensors checkpoint$/],
    [['info', f.audio], /audio\.m4a: has no video stream \(audio only\)$/],
    // an output that is an input, by its name, a symlink or a hard link, is refused before any work
    [
      [...enc, '-o', f.clip],
      /clip\.mp4: -o is the input .*clip\.mp4 \(the same file\); refusing to overwrite an input, give another name$/,
    ],
    [[...enc, '-o', f.clipLink], /clip-link\.mp4: -o is the input .*\/clip\.mp4 \(the same file\)/],
    [[...enc, '-o', f.clipHard], /clip-hard\.mp4: -o is the input .*\/clip\.mp4 \(the same file\)/],
    [['decode', f.tokens, '-o', f.tokens], /tok\.vtok: -o is the input .*tok\.vtok \(the same file\)/],
    [['frames', f.clip, '--out', f.clipHard], /clip-hard\.mp4: --out is the input .*\/clip\.mp4 \(the same file\)/],
    [
      ['generate', '--task', 'continue', '--video', f.clip, '-o', f.clipLink],
      /clip-link\.mp4: -o is the input .*\/clip\.mp4 \(the same file\)/,
    ],
    [['pack', SHIPPED, '--out', SHIPPED], /magvit2-tiny: --out is the input .*magvit2-tiny \(the same folder\)/],
    // a token file is named .vtok or .vtkc
    [
      [...enc, '-o', join(dir, 'x.mp4')],
      new RegExp(
        /x\.mp4: encode writes a token file, named \.vtok or \.vtkc \(or - for standard output\); /.source +
          /\.mp4 is a video format: to/.source,
      ),
    ],
    [
      [...enc, '-o', join(dir, 'x.webm')],
      /x\.webm: .*; \.webm is a video format: to make video from tokens, use `vtok decode`$/,
    ],
    [
      [...enc, '-o', join(dir, 'x.png')],
      /x\.png: .*; \.png is an image format: to make images from tokens, use `vtok decode`$/,
    ],
    [
      [...enc, '-o', join(dir, 'x.txt')],
      /x\.txt: encode writes a token file, named \.vtok or \.vtkc \(or - for standard output\)$/,
    ],
    [[...enc, '-o', join(dir, 'x')], /x: encode writes a token file, named \.vtok or \.vtkc/],
    // damaged weights: one check for every command that loads a tokenizer (and the generator's LM)
    [['encode', f.gray, '--model', f.nanModel, '-o', join(dir, 'x.vtok')], NAN],
    [['decode', f.tokens, '--model', f.nanModel, '-o', join(dir, 'y.gif')], NAN],
    [['decode', f.nanTokens, '-o', join(dir, 'y.gif')], NAN],
    [['tokenize', '--data', 'captioned-mnist', '--clips', '2', '--model', f.nanModel, '--out', join(dir, 'tk')], NAN],
    [['eval', '--model', f.nanModel, '--clips', '1'], NAN],
    // inputs that are not files; standard input (here empty) is read, and named so
    [['decode', f.aDir, '-o', join(dir, 'y.gif')], /a-dir: is a directory, expected a token file \(\.vtok or \.vtkc\)/],
    [['decode', join(dir, 'missing.vtok'), '-o', join(dir, 'y.gif')], /missing\.vtok: no such file/],
    [['encode', f.aDir, '-o', join(dir, 'x.vtok')], /a-dir: is a directory, expected a video or image file/],
    [['decode', '-', '-o', join(dir, 'y.gif')], /vtok: standard input: file is empty, expected a \.vtok token file/],
    [['encode', '-', '--model', SHIPPED, '-o', join(dir, 'x.vtok')], /vtok: standard input: file is empty/],
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

test(
  'encode: -o - writes the token file to standard output; ' +
    '--gray converts colour and says so; gray video needs no flag',
  async () => {
    const f = await files;
    const r = await vtok('encode', f.clip, '--model', SHIPPED, '-o', '-', '--gray');
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /note: frames 64×48 resized and center-cropped to 64×64 \(the model's training size; --size to change\)/,
    );
    assert.match(r.stderr, /note: colour converted to gray \(--gray\)/);
    assert.match(r.stderr, /→ standard output/);
    const out = join(dir, 'from-stdout.vtok');
    // run-vtok collects stdout as text; take the bytes again with a direct run
    const bytes = execFileSync(
      process.execPath,
      [
        fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)),
        'encode',
        f.gray,
        '--model',
        SHIPPED,
        '-o',
        '-',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    writeFileSync(out, bytes);
    const tf = await openTokenFile(out);
    let clips = 0;
    for await (const c of tf.clips()) clips += c.ids.length > 0 ? 1 : 0;
    assert.equal(clips, 2);
    assert.equal(tf.header.kind, 'magvit2');
  },
);

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
  for (let i = 0; i < png.width * png.height; i++)
    if (png.data[3 * i] === 20 && png.data[3 * i + 1] === 70 && png.data[3 * i + 2] === 170) marked++;
  assert.ok(marked >= 25, `${marked} pixels marked`);
});

/**
 * Runs `vtok <args>`, sends `presses` SIGINTs (30 ms apart) once the output's own temp file exists (`<name>.<pid>.
 * <ms>.tmp`: the command's signal handlers are in place before it, and the output folder's write probe, an earlier
 * .tmp, must not count) and resolves with its exit code and stderr.
 */
type Exit = { code: number | null; signal: NodeJS.Signals | null };

async function interrupt(args: string[], out: string, presses: number): Promise<Exit & { stderr: string }> {
  const env = { ...process.env, VTOK_THREADS: '1' };
  const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  p.stderr.on('data', (b) => (stderr += b));
  const closed = new Promise<Exit>((r) => p.on('close', (code, signal) => r({ code, signal })));
  const temp = new RegExp(`^${basename(out).replace(/\./g, '\\.')}\\.${p.pid}\\.\\d+\\.tmp$`);
  while (!readdirSync(dirname(out)).some((n) => temp.test(n))) {
    if (p.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < presses; i++) {
    if (i) await new Promise((r) => setTimeout(r, 30));
    p.kill('SIGINT');
  }
  return { ...(await closed), stderr };
}

// Long enough (hundreds of clips) that the work is still under way when a signal sent on a loaded machine lands.
const longGray = makeTestVideo(join(tempDir('reliab-long'), 'long.mp4'), {
  width: 64,
  height: 64,
  frames: 1200,
  args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'],
});

test('encode: Ctrl-C stops after the clip in progress and leaves no file; a second Ctrl-C too', async () => {
  const long = await longGray;
  for (const presses of [1, 2]) {
    const d = join(dir, `int-${presses}`);
    mkdirSync(d);
    const out = join(d, 'x.vtok');
    const r = await interrupt(['encode', long, '--model', SHIPPED, '-o', out], out, presses);
    assert.deepEqual([r.code, r.signal], [130, null], r.stderr);
    // with two presses the second may come after the first already stopped the work: either way, nothing is left
    const said =
      presses === 1
        ? /vtok: Ctrl-C: stopped after \d+ clips; .*x\.vtok was not written/
        : /SIGINT: stopping now|x\.vtok was not written/;
    assert.match(r.stderr, said);
    assert.deepEqual(readdirSync(d), [], `${presses} Ctrl-C: nothing left behind`);
  }
});

test(
  'decode: Ctrl-C stops after the clip in progress and leaves ' +
    'no video; a second Ctrl-C removes the partial video too',
  async () => {
    const tokens = join(tempDir('reliab-dec'), 'long.vtok');
    const clips = Array.from({ length: 300 }, (_, i) =>
      Int32Array.from({ length: gridSize }, (_, j) => (i * 7 + j) % 1024),
    );
    writeTokenFile(tokens, shippedHeader(), clips);
    for (const presses of [1, 2]) {
      const d = join(dir, `dec-int-${presses}`);
      mkdirSync(d);
      const out = join(d, 'y.mp4');
      const r = await interrupt(['decode', tokens, '-o', out], out, presses);
      assert.deepEqual([r.code, r.signal], [130, null], r.stderr);
      const said =
        presses === 1
          ? /vtok: Ctrl-C: stopped after \d+ frames; .*y\.mp4 was not written/
          : /SIGINT: stopping now|y\.mp4 was not written/;
      assert.match(r.stderr, said);
      // ffmpeg may still be closing the file it wrote to when the second signal ended vtok
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(readdirSync(d), [], `${presses} Ctrl-C: nothing left behind`);
    }
  },
);

test("encode - and decode - read standard input: a pipe from encode -o - decodes to the clip's frames", async () => {
  const f = await files;
  const out = join(dir, 'piped.gif');
  const enc = spawn(process.execPath, [MAIN, 'encode', f.gray, '--model', SHIPPED, '-o', '-'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const dec = spawn(process.execPath, [MAIN, 'decode', '-', '-o', out], { stdio: ['pipe', 'pipe', 'pipe'] });
  enc.stdout.pipe(dec.stdin);
  let stdout = '',
    stderr = '';
  dec.stdout.on('data', (b) => (stdout += b));
  dec.stderr.on('data', (b) => (stderr += b));
  const code = await new Promise<number | null>((r) => dec.on('close', r));
  assert.equal(code, 0, stderr);
  assert.match(stdout, new RegExp(`^standard input → 6 frames → ${out.replace(/\./g, '\\.')}`));
  assert.equal((await readAllFrames(out)).length, 6);

  const coded = join(dir, 'from-stdin.vtkc');
  const r = spawn(process.execPath, [MAIN, 'encode', '-', '--model', SHIPPED, '-o', coded], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let rout = '';
  r.stdout.on('data', (b) => (rout += b));
  createReadStream(f.gray).pipe(r.stdin);
  assert.equal(await new Promise<number | null>((res) => r.on('close', res)), 0);
  assert.match(rout, /^standard input: 6 frames → 2 clips/);
  const back = await vtok('decode', coded, '-o', join(dir, 'from-stdin.gif'));
  assert.equal(back.code, 0, back.stderr);
  assert.equal((await readAllFrames(join(dir, 'from-stdin.gif'))).length, 6);
});
