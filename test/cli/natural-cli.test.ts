import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCodedTokens } from '../../src/codec/container.js';
import { readTokenFile, writeTokenFile } from '../../src/io/tokenfile.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

const dir = tempDir('natural-cli');

test(
  'colour input encodes with the shipped natural-video ' + 'model by default; decode finds it by config hash',
  async () => {
    const video = await makeTestVideo(join(dir, 'colour.mp4'), { width: 160, height: 128, frames: 17 });
    const enc = await vtok('encode', video, '-o', join(dir, 'c.vtok'), '--json');
    assert.equal(enc.code, 0, enc.stderr);
    const s = JSON.parse(enc.stdout);
    assert.equal(s.vocabSize, 2 ** 18);
    assert.equal(s.tokensPerClip, 5 * 16 * 16);
    // The recorded path no longer exists (a moved checkout): decode still finds the shipped model by its hash.
    const tf = await readTokenFile(join(dir, 'c.vtok'));
    writeTokenFile(
      join(dir, 'moved.vtok'),
      { ...tf.header, extra: { ...tf.header.extra, model: join(dir, 'gone') } },
      tf.clips,
    );
    const dec = await vtok('decode', join(dir, 'moved.vtok'), '-o', join(dir, 'back.mp4'), '--json');
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal(JSON.parse(dec.stdout).frames, 17);
    // A token file no known model made is refused with one clear message.
    writeTokenFile(join(dir, 'alien.vtok'), { ...tf.header, configHash: '0123456789abcdef', extra: {} }, tf.clips);
    const alien = await vtok('decode', join(dir, 'alien.vtok'), '-o', join(dir, 'alien.mp4'));
    assert.notEqual(alien.code, 0);
    assert.match(
      alien.stderr,
      new RegExp(
        /alien\.vtok: no --model given, and neither .* nor a shipped one /.source +
          /is its magvit2 tokenizer with config 0123456789abcdef/.source,
      ),
    );
    // .vtkc: the same ids, entropy coded, smaller; it decodes like a .vtok; a damaged one is one clear error.
    const coded = await vtok('encode', video, '-o', join(dir, 'c.vtkc'), '--json');
    assert.equal(coded.code, 0, coded.stderr);
    assert.deepEqual(
      readCodedTokens(join(dir, 'c.vtkc')).clips.map((c) => [...c.ids]),
      tf.clips.map((c) => [...c.ids]),
    );
    assert.ok(statSync(join(dir, 'c.vtkc')).size < statSync(join(dir, 'c.vtok')).size);
    const dec2 = await vtok('decode', join(dir, 'c.vtkc'), '-o', join(dir, 'back2.mp4'), '--json');
    assert.equal(dec2.code, 0, dec2.stderr);
    const info = await vtok('info', join(dir, 'c.vtkc'), '--json');
    assert.equal(info.code, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout).tokens, 1280);
    const bytes = readFileSync(join(dir, 'c.vtkc'));
    writeFileSync(join(dir, 'cut.vtkc'), bytes.subarray(0, bytes.length - 7));
    const cut = await vtok('decode', join(dir, 'cut.vtkc'), '-o', join(dir, 'cut.mp4'));
    assert.notEqual(cut.code, 0);
    assert.match(cut.stderr, /cut\.vtkc: .*truncated/);
  },
);

test('gray input keeps the Moving MNIST model; a frame size off the stride is one clear error', async () => {
  const gray = await makeTestVideo(join(dir, 'gray.mp4'), {
    width: 64,
    height: 64,
    frames: 5,
    args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'],
  });
  const enc = await vtok('encode', gray, '-o', join(dir, 'g.vtok'), '--json');
  assert.equal(enc.code, 0, enc.stderr);
  assert.equal(JSON.parse(enc.stdout).vocabSize, 1024);
  const odd = await vtok('encode', gray, '--size', '62', '-o', join(dir, 'odd.vtok'));
  assert.notEqual(odd.code, 0);
  assert.match(
    odd.stderr,
    /gray\.mp4: frame size 62 is not a multiple of the tokenizer's spatial stride 4 \(try --size 60 or 64\)/,
  );
});
