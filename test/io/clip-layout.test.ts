import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clipLayout, layoutFrames, sideBySide, type ClipLayout } from '../../src/io/clip-layout.js';
import type { Frame } from '../../src/io/frame.js';

/** A 2×1 frame whose first pixel's red value names it: sample·100 + clip·10 + frame. */
const frame = (v: number): Frame => ({ width: 2, height: 1, data: Uint8Array.from([v, 0, 0, v, 0, 0]) });

/** The clips of a file, by number (sample-major). */
async function* clips(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** `n` clips of `T` frames (`per` per sample) laid out: the frames' names, the clips decoded, the width. */
async function frames(layout: ClipLayout, n: number, per: number, T: number, sample?: number) {
  const decoded: number[] = [];
  const decode = async (i: number) => {
    decoded.push(i);
    return Array.from({ length: T }, (_, t) => frame(Math.floor(i / per) * 100 + (i % per) * 10 + t));
  };
  const names: number[][] = [];
  let width = 0;
  for await (const f of layoutFrames(clips(n), layout, decode, { sample, file: 'x.vtok' })) {
    width = f.width;
    // the red value of each 2×1 sample's first pixel, samples 2 + 2 pixels apart
    names.push(Array.from({ length: (f.width + 2) / 4 }, (_, s) => f.data[s * 4 * 3]!));
  }
  return { names, decoded, width };
}

test('clip layout: extensions joined with their overlap once, cut to the recorded length', async () => {
  // one sample of 3 clips of 5 frames, each extension repeating 1 frame: 5 + 4 + 4 = 13 frames, cut to 12
  const layout = clipLayout({ samples: 1, clipsPerSample: 3, overlapFrames: 1, frames: 12 }, 'x.vtok');
  const r = await frames(layout, 3, 3, 5);
  assert.deepEqual(r.names.flat(), [0, 1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23]);
  assert.equal(r.width, 2);
  // a file from `vtok encode`: every clip in order, its padding dropped
  const encoded = clipLayout({ frames: 7, clipFrames: 5 }, 'x.vtok');
  assert.deepEqual((await frames(encoded, 2, 2, 5)).names.flat(), [0, 1, 2, 3, 4, 10, 11]);
});

test('clip layout: samples side by side, one decoded clip of each at a time; --sample picks one', async () => {
  const layout = clipLayout({ samples: 2, clipsPerSample: 2, overlapFrames: 2, frames: 6 }, 'x.vtok');
  const all = await frames(layout, 4, 2, 4);
  assert.equal(all.width, 2 + 2 + 2);
  assert.deepEqual(all.names, [
    [0, 100],
    [1, 101],
    [2, 102],
    [3, 103],
    [12, 112],
    [13, 113],
  ]);
  assert.deepEqual(all.decoded, [0, 2, 1, 3]);
  const second = await frames(layout, 4, 2, 4, 2);
  assert.deepEqual(second.names.flat(), [100, 101, 102, 103, 112, 113]);
  assert.deepEqual(second.decoded, [2, 3]);
  assert.equal(sideBySide([frame(1)]).width, 2);
  await assert.rejects(frames(layout, 4, 2, 4, 3), /x\.vtok: there is no sample 3: the token file holds 2 samples/);
  await assert.rejects(frames(layout, 3, 2, 4), /x\.vtok: corrupt: the token file holds 3 clips, its header says 2/);
  assert.throws(() => clipLayout({ samples: 2 }, 'x.vtok'), /corrupt header: 2 samples without extra\.clipsPerSample/);
  assert.throws(() => clipLayout({ overlapFrames: -1 }, 'x.vtok'), /extra\.overlapFrames must be an integer ≥ 0/);
});
