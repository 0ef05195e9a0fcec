import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { generate, type GenerateOptions } from '../../src/generation/generate.js';
import { framesToClip } from '../../src/io/clip.js';
import { encodeClips } from '../../src/tokenizers/batch.js';
import { loadGenerator, packGenerator } from '../../src/generation/model-dir.js';
import { OnnxTextEncoder } from '../../src/generation/text/onnx.js';
import { writeEncoder } from './text/tiny-t5.js';
import { TextPrefixLm } from '../../src/generation/prefix-lm/text-lm.js';
import { layoutForTokenizer, type VocabLayout } from '../../src/generation/vocab.js';
import type { Frame } from '../../src/io/frame.js';
import { encodePng } from '../../src/io/png.js';
import { readTokenFile } from '../../src/io/tokenfile.js';
import { readAllFrames } from '../../src/io/video.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { MAIN, vtok } from '../cli/run-vtok.js';
import { tempDir } from '../io/fixtures.js';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const { tokenizer, module } = loadTokenizer(TOKENIZER);
const PROMPT = 'the digit 4 moves left and right';

/** An untrained tiny generator over the shipped tokenizer (64×64×5 gray clips, 5×16×16 tokens). */
function modelDir(
  o: { tasks?: string[]; layout?: (l: VocabLayout) => VocabLayout; nan?: boolean; tokenizer?: string } = {},
): string {
  E.seed(0);
  let layout = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks: o.tasks ?? ['t2v', 't2i', 'uncond', 'fp', 'i2v'],
    sizes: [{ frames: 5, height: 64, width: 64 }],
  });
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 1400, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 40 },
  });
  if (o.layout) layout = o.layout(layout);
  const dir = tempDir('gen');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model: { kind: 'prefix-lm', config: model.config },
      layout,
      tokenizer: o.tokenizer ?? TOKENIZER,
      fps: 8,
    }),
  );
  const weights = model.stateDict();
  if (o.nan) (weights.get('lm.norm.weight')!.data as Float32Array)[3] = NaN;
  saveCheckpoint(dir, { step: 0, weights: { model: weights }, optimizers: {}, state: {} }, { best: true });
  return dir;
}

const frame = (w: number, h: number, v = 128): Frame => ({
  width: w,
  height: h,
  data: new Uint8Array(w * h * 3).fill(v),
});

test('generate: t2v frames and tokens, reproducible with a seed, long videos by extension', () => {
  const gen = loadGenerator(modelDir());
  const a = generate(gen, { task: 't2v', prompt: PROMPT, samples: 2, seed: 5, topK: 50 });
  assert.deepEqual(a.frames.shape, [2, 1, 5, 64, 64]);
  assert.equal(a.tokens.length, 2);
  assert.deepEqual(a.tokens[0]![0]!.grid, [5, 16, 16]);
  assert.ok(a.frames.data.every(Number.isFinite));
  const b = generate(gen, { task: 't2v', prompt: PROMPT, samples: 2, seed: 5, topK: 50 });
  assert.deepEqual(b.tokens[1]![0]!.ids, a.tokens[1]![0]!.ids);
  const c = generate(gen, { task: 't2v', prompt: PROMPT, samples: 1, seed: 6, topK: 50, cfg: 3 });
  assert.notDeepEqual(c.tokens[0]![0]!.ids, a.tokens[0]![0]!.ids);
  // 1.5 s at 8 fps = 12 frames: the first clip (5) and two extensions of 4 new frames each, cut to 12
  const long = generate(gen, { task: 'uncond', seconds: 1.5, seed: 1, condFrames: 1 });
  assert.deepEqual(long.frames.shape, [1, 1, 12, 64, 64]);
  assert.equal(long.tokens[0]!.length, 3);
  // by default an extension conditions on the last second, as far as the model was trained (this one on 1 or 2):
  // 2 latent frames, so 3 new frames each, 3 extensions
  const second = generate(gen, { task: 'uncond', seconds: 1.5, seed: 1 });
  assert.deepEqual([second.frames.shape[2], second.tokens[0]!.length, second.overlapFrames], [12, 4, 2]);
  const img = generate(gen, { task: 't2i', prompt: PROMPT });
  assert.deepEqual(img.frames.shape, [1, 1, 1, 64, 64]);
  const i2v = generate(gen, { task: 'i2v', image: frame(64, 64) });
  assert.deepEqual(i2v.frames.shape, [1, 1, 5, 64, 64]);
  const cont = generate(gen, { task: 'continue', video: [frame(64, 64, 10), frame(64, 64, 200)] });
  assert.deepEqual(cont.tokens[0]![0]!.grid, [5, 16, 16]);
  // two latent frames given: the output's first two frames are the video's last two (tokenized), 3 generated;
  // with 1.5 s each extension repeats 2 frames and adds 3: 5 + 3 + 3 + 3 ≥ 12
  const video = [frame(64, 64, 10), frame(64, 64, 90), frame(64, 64, 200)];
  const two = generate(gen, { task: 'continue', video, condFrames: 2, seed: 3 });
  const one = generate(gen, { task: 'continue', video, condFrames: 1, seed: 3 });
  const given = (frames: Frame[]) => Array.from(encodeClips(gen.tokenizer, framesToClip(frames, 1, false, 'v')).ids);
  assert.deepEqual(Array.from(two.tokens[0]![0]!.ids.subarray(0, 512)), given(video.slice(1)));
  assert.deepEqual(Array.from(one.tokens[0]![0]!.ids.subarray(0, 256)), given(video.slice(2)));
  assert.equal(generate(gen, { task: 'uncond', seconds: 1.5, condFrames: 2, seed: 1 }).tokens[0]!.length, 4);
  assert.throws(
    () => generate(gen, { task: 'continue', video: video.slice(0, 1), condFrames: 2 }),
    /too short to continue: 1 frame\(s\), need 2/,
  );
  // the gray model refuses colour input unless asked to convert it (encode's rule); gray input is taken as is
  const colour = (v: number): Frame => ({
    width: 64,
    height: 64,
    data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i % 3 === 0 ? v : 40)),
  });
  const colourMessage = 'the clips are in colour and the model takes gray \\(1 channel\\); add --gray to convert them';
  assert.throws(
    () => generate(gen, { task: 'i2v', image: colour(250) }),
    new RegExp(`^VtokError: the image: ${colourMessage}$`),
  );
  assert.throws(
    () => generate(gen, { task: 'continue', video: [colour(250)] }),
    new RegExp(`^VtokError: the video: ${colourMessage}$`),
  );
  const converted = generate(gen, { task: 'i2v', image: colour(250), gray: true, seed: 2 });
  const averaged = frame(64, 64, 110); // (250 + 40 + 40) / 3
  assert.deepEqual(converted.tokens[0]![0]!.ids.subarray(0, 256), Int32Array.from(given([averaged])));
  assert.deepEqual(
    generate(gen, { task: 'i2v', image: averaged, seed: 2 }).tokens[0]![0]!.ids,
    converted.tokens[0]![0]!.ids,
  );
  // int8 decode steps: a whole clip of valid visual ids, reproducible
  const q = generate(gen, { task: 'uncond', seed: 4, precision: 'int8' });
  assert.deepEqual(q.frames.shape, [1, 1, 5, 64, 64]);
  assert.ok(q.tokens[0]![0]!.ids.every((v) => v >= 0 && v < 1024));
  assert.deepEqual(
    generate(gen, { task: 'uncond', seed: 4, precision: 'int8' }).tokens[0]![0]!.ids,
    q.tokens[0]![0]!.ids,
  );
  assert.throws(() => generate(gen, { task: 'uncond', precision: 'int4' as never }), /precision must be fp32 or int8/);
});

test('generate: bad inputs get one clear error', () => {
  const gen = loadGenerator(modelDir({ tasks: ['t2v', 'uncond', 'i2v', 'fp'] }));
  assert.throws(
    () => generate(gen, { task: 't2i', prompt: PROMPT }),
    /unknown task "t2i" for this model \(it knows: t2v, uncond, i2v, fp\)/,
  );
  assert.throws(() => generate(gen, { task: 'dance' }), /unknown task "dance"/);
  assert.throws(
    () => generate(gen, { task: 't2v', prompt: 'x'.repeat(41) }),
    /41 bytes long; the text encoder takes at most 40/,
  );
  assert.throws(() => generate(gen, { task: 't2v' }), /needs a text prompt/);
  assert.throws(() => generate(gen, { task: 'uncond', prompt: PROMPT }), /takes no text prompt/);
  assert.throws(() => generate(gen, { task: 'uncond', cfg: 2 }), /needs a text prompt/);
  assert.throws(
    () => generate(gen, { task: 'i2v', image: frame(32, 32) }),
    /the image is 32×32; the model generates 64×64/,
  );
  assert.throws(() => generate(gen, { task: 'i2v' }), /needs an image/);
  assert.throws(() => generate(gen, { task: 'continue', video: [] }), /too short to continue: 0 frame/);
  // an input the task does not take is refused, not ignored
  const refused = (o: GenerateOptions, re: RegExp) => assert.throws(() => generate(gen, o), re);
  const t2vLabel = /^VtokError: task t2v takes no class label \(it takes: text prompt, seconds, condFrames\)$/;
  refused({ task: 't2v', prompt: PROMPT, label: 2 }, t2vLabel);
  refused({ task: 't2v', prompt: PROMPT, condFrames: 2 }, /task t2v takes no condFrames without seconds/);
  refused({ task: 'uncond', image: frame(64, 64) }, /task uncond takes no image/);
  refused({ task: 'i2v', image: frame(64, 64), video: [frame(64, 64)] }, /task i2v takes no video \(it takes: text/);
  refused({ task: 't2i', prompt: PROMPT, seconds: 2 }, /task t2i takes no seconds \(it takes: text prompt\)/);
  assert.throws(() => loadGenerator(modelDir({ nan: true })), /lm\.norm\.weight holds NaN/);
  assert.throws(
    () =>
      loadGenerator(modelDir({ layout: (l) => ({ ...l, tokenizer: { ...l.tokenizer, identity: 'f'.repeat(64) } }) })),
    new RegExp(
      /tokenizer mismatch: the model was trained with tokenizer /.source +
        /\(magvit2, vocabulary 1024, identity ffffffffffffffff\) /.source +
        /but got \(magvit2, vocabulary 1024, identity [0-9a-f]{16}\)/.source,
    ),
  );
  assert.throws(
    () => loadGenerator(modelDir({ tokenizer: '/nonexistent/tok' })),
    /tokenizer directory \/nonexistent\/tok named in config.json is missing/,
  );
  assert.throws(() => loadGenerator(TOKENIZER), /not a generator/);
  assert.throws(() => loadGenerator('/nonexistent/model'), /no such model directory/);
});

test(
  'vtok generate writes the video and the token file; ' + 'vtok pack makes a self-contained model directory',
  async () => {
    const dir = modelDir(),
      out = tempDir('gen-cli');
    const r = await vtok(
      'generate',
      '--model',
      dir,
      '--prompt',
      PROMPT,
      '--seed',
      '2',
      '--top-k',
      '40',
      '-o',
      join(out, 'a.gif'),
      '--quiet',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(out, 'a.gif')));
    const t = await readTokenFile(join(out, 'a.vtok'));
    assert.equal(t.header.kind, 'magvit2');
    assert.deepEqual(
      t.clips.map((c) => c.grid),
      [[5, 16, 16]],
    );
    const dec = await vtok('decode', join(out, 'a.vtok'), '-o', join(out, 'a2.gif'));
    assert.equal(dec.code, 0, dec.stderr);
    assert.match(dec.stdout, /5 frames/);
    const bad = await vtok('generate', '--model', dir, '--prompt', 'y'.repeat(50), '-o', join(out, 'b.gif'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /50 bytes long; the text encoder takes at most 40/);
    assert.ok(!existsSync(join(out, 'b.gif')));
    // a colour image for the gray model: refused with encode's message unless --gray asks for the conversion
    const red = join(out, 'red.png');
    writeFileSync(
      red,
      encodePng({
        width: 64,
        height: 64,
        data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i % 3 === 0 ? 220 : 30)),
      }),
    );
    const refused = await vtok('generate', '--model', dir, '--task', 'i2v', '--image', red, '-o', join(out, 'c.gif'));
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /the image: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/,
    );
    const grayed = await vtok(
      'generate',
      '--model',
      dir,
      '--task',
      'i2v',
      '--image',
      red,
      '--gray',
      '-o',
      join(out, 'c.gif'),
      '--quiet',
    );
    assert.equal(grayed.code, 0, grayed.stderr);
    assert.ok(existsSync(join(out, 'c.gif')));
    const packed = join(out, 'packed');
    const p = await vtok('pack', dir, '--out', packed, '--half');
    assert.equal(p.code, 0, p.stderr);
    const g = loadGenerator(packed);
    assert.equal(g.tokenizerDir, join(packed, 'tokenizer'));
    assert.deepEqual(generate(g, { task: 'uncond', seed: 1 }).frames.shape, [1, 1, 5, 64, 64]);
    const demo = await vtok('demo', '--generator', packed, '--clips', '1', '--out', join(out, 'demo'), '--json');
    assert.equal(demo.code, 0, demo.stderr);
    assert.equal(JSON.parse(demo.stdout).generated.prompt, 'the digit 4 moves left and right');
    assert.ok(existsSync(join(out, 'demo', 'generated.gif')) && existsSync(join(out, 'demo', 'generated.vtok')));
  },
);

test('the token file of vtok generate decodes to its video: extensions joined once, samples side by side', async () => {
  const dir = modelDir(),
    out = tempDir('gen-tokens');
  // 1.5 s at 8 fps: 12 frames from 4 clips of 5 (each extension repeats 2 frames), two samples 64 px wide, 2 apart
  const args = ['--task', 'uncond', '--seconds', '1.5', '--samples', '2', '--seed', '3', '--quiet'];
  const gen = await vtok('generate', '--model', dir, ...args, '-o', join(out, 'a.y4m'));
  assert.equal(gen.code, 0, gen.stderr);
  const written = await readAllFrames(join(out, 'a.y4m'));
  assert.deepEqual([written.length, written[0]!.width, written[0]!.height], [12, 130, 64]);
  const all = await vtok('decode', join(out, 'a.vtok'), '-o', join(out, 'b.y4m'));
  assert.equal(all.code, 0, all.stderr);
  // the same tokens, decoded and laid out the same way: the same file (y4m holds the pixels as they are)
  assert.ok(readFileSync(join(out, 'b.y4m')).equals(readFileSync(join(out, 'a.y4m'))), 'decode differs from generate');
  const one = await vtok('decode', join(out, 'a.vtok'), '--sample', '2', '-o', join(out, 'c.y4m'));
  assert.equal(one.code, 0, one.stderr);
  const right = await readAllFrames(join(out, 'c.y4m'));
  assert.equal(right.length, 12);
  right.forEach((f, t) => {
    assert.equal(f.width, 64);
    for (let y = 0; y < 64; y++) {
      const row = written[t]!.data.subarray((y * 130 + 66) * 3, (y * 130 + 130) * 3);
      assert.ok(Buffer.from(f.data.subarray(y * 64 * 3, (y + 1) * 64 * 3)).equals(row), `frame ${t} row ${y}`);
    }
  });
  const none = await vtok('decode', join(out, 'a.vtok'), '--sample', '3', '-o', join(out, 'd.y4m'));
  assert.equal(none.code, 1);
  assert.match(none.stderr, /a\.vtok: there is no sample 3: the token file holds 2 samples/);
  assert.ok(!existsSync(join(out, 'd.y4m')));
});

test('vtok generate: a long request says how long it will take, and Ctrl-C still stops it', async () => {
  const dir = modelDir(),
    out = tempDir('gen-long');
  const args = ['generate', '--model', dir, '--task', 'uncond', '--seconds', '3600', '-o', join(out, 'x.mp4')];
  const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const said = new Promise<void>((resolve) =>
    p.stderr.on('data', (b) => {
      stderr += b;
      if (/about [\d.]+ (minutes|hours) for 9600 clips/.test(stderr)) resolve();
    }),
  );
  const closed = new Promise<number | null>((r) => p.on('close', r));
  // the note comes a few seconds into sampling; one that never comes fails the test instead of running for hours
  const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
  await Promise.race([said, closed]);
  p.kill('SIGINT');
  assert.equal(await closed, 130, stderr);
  clearTimeout(timer);
  assert.match(stderr, /Ctrl-C: stopped while sampling; .*x\.mp4 was not written/);
  assert.deepEqual(readdirSync(out), []);
});

test(
  'a model directory with a frozen ONNX text encoder ' + 'generates from a prompt and packs with the encoder',
  async () => {
    const encDir = tempDir('t5');
    writeEncoder(encDir);
    E.seed(0);
    const layout = layoutForTokenizer(tokenizer, module.stateDict(), {
      tasks: ['t2v'],
      sizes: [{ frames: 5, height: 64, width: 64 }],
    });
    const config = {
      lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 1400, textDim: 16 },
      text: { kind: 'onnx' as const, dir: encDir, dim: 16, maxTokens: 12 },
    };
    const model = new TextPrefixLm(config, { frozen: OnnxTextEncoder.load(encDir) });
    const dir = tempDir('gen-onnx');
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ model: { kind: 'prefix-lm', config }, layout, tokenizer: TOKENIZER, fps: 8 }),
    );
    saveCheckpoint(dir, { step: 0, weights: { model: model.stateDict() }, optimizers: {}, state: {} }, { best: true });
    const a = generate(loadGenerator(dir), { task: 't2v', prompt: 'the digit 7 moves up and down', seed: 3 });
    assert.throws(
      () =>
        generate(loadGenerator(dir), {
          task: 't2v',
          prompt: 'the digit 7 moves up and down and the digit 1 moves left',
        }),
      /tokens long; the text encoder takes at most 12/,
    );
    const packed = join(tempDir('gen-onnx-pack'), 'm');
    packGenerator(dir, packed);
    assert.ok(existsSync(join(packed, 'text-encoder', 'encoder.onnx')));
    const b = generate(loadGenerator(packed), { task: 't2v', prompt: 'the digit 7 moves up and down', seed: 3 });
    assert.deepEqual(b.tokens[0]![0]!.ids, a.tokens[0]![0]!.ids);
  },
);

test('vtok generate: Ctrl-C while sampling stops at the next token, writes nothing, exit 130', async () => {
  const dir = modelDir(),
    out = tempDir('gen-int');
  const p = spawn(
    process.execPath,
    [MAIN, 'generate', '--model', dir, '--task', 'uncond', '--seconds', '60', '-o', join(out, 'x.gif')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VTOK_THREADS: '1' } },
  );
  let stderr = '';
  const started = new Promise<void>((resolve) =>
    p.stderr.on('data', (b) => {
      stderr += b;
      if (/^generate \d+\//m.test(stderr)) resolve();
    }),
  );
  const closed = new Promise<number | null>((r) => p.on('close', r));
  await started; // the progress line: sampling is under way (a minute of video: far from done)
  const t0 = Date.now();
  p.kill('SIGINT');
  assert.equal(await closed, 130, stderr);
  assert.ok(Date.now() - t0 < 5000, `stopped ${Date.now() - t0} ms after the signal`);
  assert.match(stderr, /Ctrl-C: stopped while sampling; .*x\.gif was not written/);
  assert.deepEqual(readdirSync(out), []);
});
