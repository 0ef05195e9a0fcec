import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import '../../src/engine/index.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { magvit2Yaml, writeLarpFolder, writeMagvit2Checkpoint } from '../tokenizers/release-fixtures.js';
import { vtok } from './run-vtok.js';

/**
 * `vtok import` from the command line: a release becomes a model directory other commands take as --model (info,
 * encode, decode); bad input is one line on stderr and a non-zero exit with nothing written.
 */
const dir = tempDir('import-cli');

test('import an Open-MAGVIT2 checkpoint and a LARP folder; other commands take them as --model', async () => {
  const ckpt = writeMagvit2Checkpoint(join(dir, 'video.ckpt'), 'magvit2_video');
  const yaml = join(dir, 'video.yaml');
  writeFileSync(yaml, magvit2Yaml('magvit2_video'));
  const out = join(dir, 'magvit2');
  const r = await vtok('import', ckpt, '--out', out, '--config', yaml);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Open-MAGVIT2 video tokenizer \(magvit2, [\d,]+ parameters; licence Apache-2\.0\)/);
  assert.match(r.stderr, /vtok: note: LFQ bit order: LSB-first assumed/);
  const info = await vtok('info', out, '--json');
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).model, 'magvit2');

  const larp = await vtok('import', writeLarpFolder(join(dir, 'larp-release')), '--out', join(dir, 'larp'), '--json');
  assert.equal(larp.code, 0, larp.stderr);
  assert.equal(JSON.parse(larp.stdout).licence, 'MIT');

  // the imported directory is a --model like any other (the golden parity of both is test/tokenizers/import.test.ts)
  const video = await makeTestVideo(join(dir, 'clip.mp4'), { width: 32, height: 32, frames: 8 });
  const ids = join(dir, 'clip.vtok');
  const enc = await vtok('encode', video, '--model', join(dir, 'larp'), '-o', ids, '--json');
  assert.equal(enc.code, 0, enc.stderr);
  const dec = await vtok('decode', ids, '--model', join(dir, 'larp'), '-o', join(dir, 'back.mp4'));
  assert.equal(dec.code, 0, dec.stderr);
  assert.ok(existsSync(join(dir, 'back.mp4')));
});

test('bad input: one line, non-zero exit, nothing written', async () => {
  const foreign = writeMagvit2Checkpoint(join(dir, 'foreign.ckpt'), 'magvit2_video', { foreignInWeights: true });
  const out = join(dir, 'never');
  const r = await vtok('import', foreign, '--out', out);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /^vtok: .*foreign\.ckpt: weight "encoder\.extra" is a pickled numpy\.core\.multiarray\._reconstruct/,
  );
  assert.ok(!existsSync(out));
  const bad = await vtok('import', foreign, '--out', out, '--lfq-order', 'middle');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--lfq-order/);
});
