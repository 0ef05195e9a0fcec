import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CaptionedMovingMnist,
  HELD_OUT,
  captionedMnistSample,
  isHeldOut,
  parseCaption,
} from '../../src/data/captioned-mnist.js';
import { CaptionedSynthetic, colourName } from '../../src/data/captioned-synthetic.js';
import { scanCaptionedFolder } from '../../src/data/captioned-folder.js';
import { loadMnist } from '../../src/data/moving-mnist.js';
import { tempDir } from '../io/fixtures.js';

const FORM = /^the digit \d moves (left and right|up and down)( and the digit \d moves (left and right|up and down))?$/;

test('captioned Moving MNIST: template captions, one axis per digit, true labels, deterministic', () => {
  const ds = new CaptionedMovingMnist({ split: 'train', length: 400, seed: 3 });
  assert.deepEqual(ds.shape, { channels: 1, frames: 5, height: 64, width: 64 });
  const mnist = loadMnist('train');
  let two = 0;
  for (let i = 0; i < 400; i++) {
    const c = ds.get(i);
    assert.match(c.caption, FORM);
    const { digits, axes } = c.labels as { digits: number[]; axes: string[] };
    assert.deepEqual(parseCaption(c.caption), { digits, axes });
    if (digits.length === 2) two++;
    for (let k = 0; k < digits.length; k++)
      assert.ok(!isHeldOut(digits[k]!, axes[k] as 'vertical'), `train clip ${i} holds a held-out pair: ${c.caption}`);
    const s = captionedMnistSample(i, { split: 'train', seed: 3 });
    assert.deepEqual(
      s.digitIndex.map((j) => mnist.labels[j]),
      digits,
      'the images drawn are of the captioned digits',
    );
    // the digit moves along its axis only
    const K = digits.length;
    for (let k = 0; k < K; k++) {
      const moving = axes[k] === 'horizontal' ? 0 : 1;
      const xs = Array.from({ length: 5 }, (_, t) => s.positions[(t * K + k) * 2 + moving]!);
      const still = Array.from({ length: 5 }, (_, t) => s.positions[(t * K + k) * 2 + 1 - moving]!);
      assert.ok(new Set(still).size === 1, 'the other coordinate stays put');
      assert.ok(new Set(xs).size > 1, 'the digit moves');
    }
    assert.ok(
      c.data.some((v) => v > 200),
      'the digits are drawn',
    );
    assert.equal(c.label, 2 * digits[0]! + (axes[0] === 'vertical' ? 1 : 0));
  }
  assert.ok(two > 120 && two < 280, `about half the clips have two digits (${two})`);
  // deterministic by index, seed-dependent
  assert.deepEqual(ds.get(17), new CaptionedMovingMnist({ split: 'train', length: 400, seed: 3 }).get(17));
  assert.notDeepEqual(ds.get(17).data, new CaptionedMovingMnist({ split: 'train', length: 400, seed: 4 }).get(17).data);
  // one- and two-digit options, 17 frames, RGB
  const one = new CaptionedMovingMnist({ digits: 1, frames: 17, channels: 3, length: 5 });
  assert.equal(one.get(0).data.length, 17 * 64 * 64 * 3);
  assert.equal((one.get(1).labels.digits as number[]).length, 1);
  assert.equal((new CaptionedMovingMnist({ digits: 2, length: 5 }).get(2).labels.digits as number[]).length, 2);
  assert.throws(() => ds.get(400), /out of range/);
});

test('captioned Moving MNIST: held-out digit×motion pairs only in the unseen split', () => {
  const seenPairs = new Set<string>();
  for (let i = 0; i < 600; i++) {
    const s = captionedMnistSample(i, { split: 'test' });
    s.digits.forEach((d, k) => {
      seenPairs.add(`${d}${s.axes[k]}`);
    });
    const u = captionedMnistSample(i, { split: 'unseen' });
    assert.ok(isHeldOut(u.digits[0]!, u.axes[0]!), u.caption);
  }
  assert.equal(seenPairs.size, 20 - HELD_OUT.length, 'every seen pair occurs in the test split, no held-out one');
  // the validation split: seen pairs only, fixed clips of its own (none is a test or unseen clip)
  const evaluated = new Set<string>();
  for (let i = 0; i < 300; i++)
    for (const split of ['test', 'unseen'] as const)
      evaluated.add(Buffer.from(captionedMnistSample(i, { split, digits: 1 }).frames).toString('base64'));
  for (let i = 0; i < 300; i++) {
    const v = captionedMnistSample(i, { split: 'val', digits: 1 });
    assert.ok(
      v.digits.every((d, k) => !isHeldOut(d, v.axes[k]!)),
      v.caption,
    );
    assert.ok(!evaluated.has(Buffer.from(v.frames).toString('base64')), `val clip ${i} is an evaluated clip`);
    if (i < 3) assert.deepEqual(v, captionedMnistSample(i, { split: 'val', digits: 1, seed: 99 }));
  }
  for (const [d, a] of HELD_OUT) assert.ok(!seenPairs.has(`${d}${a}`));
  assert.equal(parseCaption('the digit 4 moves in circles'), undefined);
});

test('captioned synthetic shapes and folders with sidecar captions', () => {
  const ds = new CaptionedSynthetic({ length: 20, frames: 4, height: 32, width: 32 });
  for (let i = 0; i < 20; i++) {
    const c = ds.get(i);
    const l = c.labels as { shape: string; colour: string; direction: string; texture: string; striped: boolean };
    assert.equal(
      c.caption,
      `a ${l.striped ? 'striped ' : ''}${l.colour} ${l.shape} moves ${l.direction} over a ${l.texture} background`,
    );
    assert.equal(ds.classes[c.label!], l.direction);
  }
  assert.equal(colourName([250, 20, 10]), 'red');
  assert.equal(colourName([10, 10, 240]), 'blue');

  const root = tempDir('capfolder');
  mkdirSync(join(root, 'a'));
  writeFileSync(join(root, 'a', 'one.mp4'), 'x');
  writeFileSync(join(root, 'a', 'one.txt'), '  a red ball rolls\n');
  writeFileSync(join(root, 'a', 'two.mp4'), 'x');
  const { items } = scanCaptionedFolder(root);
  assert.deepEqual(
    items.map((it) => [it.path.endsWith('one.mp4') || it.path.endsWith('two.mp4'), it.caption]),
    [
      [true, 'a red ball rolls'],
      [true, undefined],
    ],
  );
});
