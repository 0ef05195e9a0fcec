import '../../src/engine/index.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCodedTokens } from '../../src/codec/container.js';
import { shippedModel } from '../../src/io/shipped.js';
import { readTokenFile } from '../../src/io/tokenfile.js';
import { readAllFrames } from '../../src/io/video.js';
import { decodeFile, encodeFile } from '../../src/tokenizers/files.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';

const dir = tempDir('tok-files');

test(
  'encodeFile → decodeFile from the library: gray video ' + 'with the shipped default, .vtok and .vtkc, and back',
  async () => {
    const gray = await makeTestVideo(join(dir, 'gray.mp4'), {
      width: 64,
      height: 48,
      frames: 7,
      args: ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'],
    });
    const r = await encodeFile(gray, join(dir, 'g.vtok'), { quiet: true });
    // gray input picks the shipped gray-video model; its clips are 5 frames, so 7 frames make 2 clips (the last padded)
    assert.equal(r.model, shippedModel('gray video').path);
    assert.deepEqual([r.kind, r.frames, r.clips, r.vocabSize], ['magvit2', 7, 2, 1024]);
    assert.equal(
      r.tokensPerClip,
      r.grid.reduce((a, b) => a * b, 1),
    );
    assert.deepEqual(r.notes, [
      "frames 64×48 resized and center-cropped to 64×64 (the model's training size; --size to change)",
    ]);
    const tf = await readTokenFile(join(dir, 'g.vtok'));
    assert.equal(tf.clips.length, 2);
    assert.deepEqual([tf.header.kind, tf.header.extra?.frames, tf.header.extra?.size], ['magvit2', 7, 64]);

    const coded = await encodeFile(gray, join(dir, 'g.vtkc'), { quiet: true });
    assert.equal(coded.clips, 2);
    assert.deepEqual(
      readCodedTokens(join(dir, 'g.vtkc')).clips.map((c) => [...c.ids]),
      tf.clips.map((c) => [...c.ids]),
    );

    // no model given: the one the token file records; only the real frames come back
    for (const file of ['g.vtok', 'g.vtkc']) {
      const d = await decodeFile(join(dir, file), join(dir, `${file}.gif`));
      assert.deepEqual([d.model, d.frames], [shippedModel('gray video').path, 7]);
      const frames = await readAllFrames(join(dir, `${file}.gif`));
      assert.deepEqual([frames.length, frames[0]!.width, frames[0]!.height], [7, 64, 64]);
    }
  },
);

test(
  'encodeFile refuses colour input for a gray model ' + 'unless asked, and a size off the stride; writes nothing',
  async () => {
    const colour = await makeTestVideo(join(dir, 'colour.mp4'), { width: 64, height: 64, frames: 5 });
    const model = shippedModel('gray video').path;
    await assert.rejects(
      encodeFile(colour, join(dir, 'c.vtok'), { model, quiet: true }),
      /colour\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them/,
    );
    await assert.rejects(
      encodeFile(colour, join(dir, 'c.vtok'), { model, size: 50, gray: true, quiet: true }),
      /frame size 50 is not a multiple of the tokenizer's spatial stride 4 \(try --size 48 or 52\)/,
    );
    assert.equal(existsSync(join(dir, 'c.vtok')), false);
    const r = await encodeFile(colour, join(dir, 'c.vtok'), { model, gray: true, quiet: true });
    assert.deepEqual(r.notes, ['colour converted to gray (--gray)']);
  },
);
