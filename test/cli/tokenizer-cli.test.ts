import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { readAllFrames } from '../../src/io/video.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

test('train → encode → decode through the CLI, and resume', async () => {
  const dir = tempDir('tok-cli');
  const run = join(dir, 'run');
  const r = await vtok(
    'train',
    'larp',
    '--data',
    'moving-mnist',
    '--preset',
    'tiny',
    '--steps',
    '4',
    '--batch',
    '2',
    '--eval-every',
    '4',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(summary.step, 4);
  assert.ok(summary.psnr > 0 && summary.codebook_usage > 0);
  for (const f of ['config.json', 'metrics.jsonl', 'curves.png', 'samples/recon-latest.gif', 'checkpoints/latest.json'])
    assert.ok(existsSync(join(run, f)), f);

  // the same command with more steps resumes from step 4
  const r2 = await vtok(
    'train',
    'larp',
    '--data',
    'moving-mnist',
    '--preset',
    'tiny',
    '--steps',
    '6',
    '--batch',
    '2',
    '--eval-every',
    '6',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout.trim().split('\n').pop()!).step, 6);
  const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.equal(Math.max(...steps), 6);

  const video = await makeTestVideo(join(dir, 'in.mp4'), { width: 48, height: 40, fps: 8, frames: 11 });
  // the model was trained on gray Moving MNIST; the colour test video is converted only when asked
  const enc = await vtok('encode', video, '--model', run, '-o', join(dir, 'x.vtok'), '--gray', '--json');
  assert.equal(enc.code, 0, enc.stderr);
  const e = JSON.parse(enc.stdout);
  assert.deepEqual([e.frames, e.clips, e.tokensPerClip], [11, 2, 32]);
  const dec = await vtok('decode', join(dir, 'x.vtok'), '-o', join(dir, 'out.gif'), '--json');
  assert.equal(dec.code, 0, dec.stderr);
  const frames = await readAllFrames(join(dir, 'out.gif'));
  assert.equal(frames.length, 11);
  assert.deepEqual([frames[0]!.width, frames[0]!.height], [32, 32]);

  const ev = await vtok('eval', '--model', run, '--clips', '4', '--batch', '2', '--json');
  assert.equal(ev.code, 0, ev.stderr);
  const report = JSON.parse(ev.stdout);
  assert.equal(report.clips, 4);
  assert.ok(report.psnr > 0 && report.ssim > -1 && report.bpp > 0 && report.codebook_usage > 0, ev.stdout);

  const bad = await vtok('decode', join(dir, 'in.mp4'), '-o', join(dir, 'y.gif'));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /in\.mp4/);
  const noRun = await vtok('encode', video, '--model', dir, '-o', join(dir, 'z.vtok'));
  assert.notEqual(noRun.code, 0);
  assert.match(noRun.stderr, /no config\.json/);
});

test(
  '--frames: a video tokenizer trained on images (1 frame), ' +
    'then resumed on clips with the same weights; pack best or latest',
  async () => {
    const run = join(tempDir('tok-frames'), 'run');
    const r = await vtok(
      'train',
      'magvit2',
      '--data',
      'moving-mnist',
      '--preset',
      'micro',
      '--frames',
      '1',
      '--batch',
      '4',
      '--steps',
      '2',
      '--eval-every',
      '2',
      '--out',
      run,
      '--quiet',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /2 steps of 4 clips 1×48²/);
    assert.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).data.frames, 1);
    const r2 = await vtok(
      'train',
      'magvit2',
      '--data',
      'moving-mnist',
      '--preset',
      'micro',
      '--batch',
      '2',
      '--steps',
      '3',
      '--eval-every',
      '3',
      '--out',
      run,
      '--quiet',
    );
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /resuming from step 2/);
    assert.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).data.frames, 5);
    // pack takes the best checkpoint by default, or the latest on request (weights equal to that checkpoint's EMA)
    const packDir = tempDir('tok-frames-pack');
    for (const which of ['best', 'latest'] as const) {
      const p = await vtok('pack', run, '--out', join(packDir, which), '--checkpoint', which);
      assert.equal(p.code, 0, p.stderr);
      const packed = loadTokenizer(join(packDir, which)).module.stateDict(),
        source = loadTokenizer(run, { which }).module.stateDict();
      for (const [k, t] of source) assert.deepEqual(E.toArray(packed.get(k)!), E.toArray(t), k);
    }
    const badPack = await vtok('pack', run, '--out', join(packDir, 'x'), '--checkpoint', 'first');
    assert.notEqual(badPack.code, 0);
    assert.match(badPack.stderr, /--checkpoint/);
    const bad = await vtok('train', 'lm', '--frames', '3', '--out', join(tempDir('tok-frames-lm'), 'run'), '--quiet');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--frames applies to tokenizer training, not lm/);
  },
);
