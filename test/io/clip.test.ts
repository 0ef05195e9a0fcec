import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clipRange, fitChannels, frameRange, framesToClip, joinClips } from '../../src/io/clip.js';
import { clipsToTensor, type ClipTensor, type Frame } from '../../src/io/frame.js';

/** N×C×T×H×W with element value n·1000 + c·100 + t·10 + pixel, so every slice is recognisable. */
function numbered(N: number, C: number, T: number, H: number, W: number): ClipTensor {
  const data = new Float32Array(N * C * T * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let t = 0; t < T; t++)
        for (let p = 0; p < H * W; p++) {
          data[((n * C + c) * T + t) * H * W + p] = n * 1000 + c * 100 + t * 10 + p;
        }
  return { data, shape: [N, C, T, H, W] };
}

test('clip slices and joins: clipRange, frameRange, joinClips along clips and time', () => {
  const v = numbered(3, 2, 4, 1, 2);
  const mid = clipRange(v, 1, 3);
  assert.deepEqual(mid.shape, [2, 2, 4, 1, 2]);
  assert.deepEqual([mid.data[0], mid.data[mid.data.length - 1]], [1000, 2131]);
  const f = frameRange(v, 1, 3);
  assert.deepEqual(f.shape, [3, 2, 2, 1, 2]);
  assert.deepEqual(Array.from(f.data.subarray(0, 8)), [10, 11, 20, 21, 110, 111, 120, 121]);
  assert.throws(() => frameRange(v, 2, 5), /frames 2…4 are outside a 4-frame clip/);
  // splitting in time and joining again gives the clips back; so does splitting by clips
  assert.deepEqual(joinClips([frameRange(v, 0, 1), frameRange(v, 1, 4)], 'time'), { data: v.data, shape: v.shape });
  assert.deepEqual(joinClips([clipRange(v, 0, 1), clipRange(v, 1, 3)], 'clips'), { data: v.data, shape: v.shape });
});

test('fitChannels: gray content passes to a gray model, colour only with --gray', () => {
  const plane = 4;
  const gray = new Float32Array(3 * plane).fill(0.25);
  const r = fitChannels(gray, [1, 3, 1, 2, 2], 1, false, 'in.mp4');
  assert.deepEqual([r.shape, r.converted, [...r.data]], [[1, 1, 1, 2, 2], false, [0.25, 0.25, 0.25, 0.25]]);
  const colour = new Float32Array(3 * plane);
  colour.fill(1, 0, plane); // red
  assert.throws(
    () => fitChannels(colour, [1, 3, 1, 2, 2], 1, false, 'in.mp4'),
    /^VtokError: in\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert them$/,
  );
  const c = fitChannels(colour, [1, 3, 1, 2, 2], 1, true, 'in.mp4');
  assert.equal(c.converted, true);
  assert.ok(Math.abs(c.data[0]! - 1 / 3) < 1e-6);
  assert.equal(fitChannels(colour, [1, 3, 1, 2, 2], 3, false, 'x').data, colour);
});

test('framesToClip: frames of one clip by the same rule; gray frames give exactly their packed values', () => {
  const frame = (rgb: (p: number) => [number, number, number]): Frame => ({
    width: 2,
    height: 2,
    data: Uint8Array.from({ length: 12 }, (_, i) => rgb(Math.floor(i / 3))[i % 3]!),
  });
  const grays = [frame((p) => [p * 60, p * 60, p * 60]), frame((p) => [255 - p, 255 - p, 255 - p])];
  const g = framesToClip(grays, 1, false, 'the video');
  assert.deepEqual(g.shape, [1, 1, 2, 2, 2]);
  assert.equal(g.converted, false);
  // one channel of the RGB tensor, bit for bit
  assert.deepEqual(g.data, clipsToTensor([grays]).data.subarray(0, 8));
  const colour = [frame((p) => [200, p, 0])];
  assert.throws(
    () => framesToClip(colour, 1, false, 'the image'),
    new RegExp(
      /^VtokError: the image: the clips are in colour and the model takes gray \(1 channel\); /.source +
        /add --gray to convert them$/.source,
    ),
  );
  const c = framesToClip(colour, 1, true, 'the image');
  assert.equal(c.converted, true);
  assert.ok(Math.abs(c.data[1]! - ((200 + 1 + 0) / 3 / 127.5 - 1)) < 1e-6);
  assert.deepEqual(framesToClip(colour, 3, false, 'x').shape, [1, 3, 1, 2, 2]);
});
