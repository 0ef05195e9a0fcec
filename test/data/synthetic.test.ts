import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIRECTIONS, SHAPES, SyntheticClips, syntheticSample } from '../../src/data/synthetic.js';

const opts = { frames: 8, height: 32, width: 32 };

test('synthetic clips are deterministic and labelled by shape', () => {
  const a = syntheticSample(3, opts);
  assert.deepEqual(syntheticSample(3, opts).data, a.data);
  assert.notDeepEqual(syntheticSample(3, { ...opts, seed: 1 }).data, a.data);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const s = syntheticSample(i, opts);
    assert.equal(SHAPES[s.label], s.shape);
    seen.add(s.label);
  }
  assert.equal(seen.size, SHAPES.length, 'every class appears');
});

test('the shape is drawn where its recorded centre is, in its colour', () => {
  for (let i = 0; i < 30; i++) {
    const s = syntheticSample(i, opts);
    if (s.striped || s.shape === 'triangle') continue; // the centre pixel of these may be a darker stripe / edge
    for (let t = 0; t < 8; t++) {
      const x = Math.floor(s.centers[2 * t]!),
        y = Math.floor(s.centers[2 * t + 1]!);
      const o = ((t * 32 + y) * 32 + x) * 3;
      assert.deepEqual([...s.data.subarray(o, o + 3)], s.color, `clip ${i} frame ${t}`);
    }
  }
});

test('motion labels: the shape moves steadily in the labelled direction and stays inside the frame', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const s = syntheticSample(i, { ...opts, labelBy: 'motion' });
    assert.equal(DIRECTIONS[s.label], s.direction);
    seen.add(s.direction!);
    const dx = s.centers[14]! - s.centers[0]!;
    const dy = s.centers[15]! - s.centers[1]!;
    const want = { right: [1, 0], left: [-1, 0], down: [0, 1], up: [0, -1] }[s.direction!];
    assert.ok(dx * want[0]! + dy * want[1]! > 3, `clip ${i} moves ${s.direction}: (${dx}, ${dy})`);
    assert.ok(Math.abs(dx * want[1]!) + Math.abs(dy * want[0]!) < 1e-9, 'no sideways motion');
    for (let t = 1; t < 8; t++) {
      const step = Math.hypot(s.centers[2 * t]! - s.centers[2 * t - 2]!, s.centers[2 * t + 1]! - s.centers[2 * t - 1]!);
      assert.ok(Math.abs(step - Math.hypot(dx, dy) / 7) < 1e-9, 'constant speed, no bounce');
      for (const c of [s.centers[2 * t]!, s.centers[2 * t + 1]!]) assert.ok(c - s.radius >= 0 && c + s.radius <= 32);
    }
  }
  assert.equal(seen.size, 4);
});

test('the dataset wraps samples with labels and class names', () => {
  const ds = new SyntheticClips({ ...opts, length: 5, labelBy: 'motion' });
  assert.deepEqual(ds.shape, { channels: 3, frames: 8, height: 32, width: 32 });
  assert.deepEqual(ds.classes, ['right', 'left', 'down', 'up']);
  const c = ds.get(2);
  assert.equal(c.data.length, 8 * 32 * 32 * 3);
  assert.equal(c.label, syntheticSample(2, { ...opts, labelBy: 'motion' }).label);
  assert.throws(() => ds.get(5), /out of range/);
});

test(
  'textures: the default list is gradient, stripes and ' + 'checker; flat backgrounds are one colour; bad names fail',
  () => {
    for (let i = 0; i < 12; i++) {
      const explicit = syntheticSample(i, { ...opts, textures: ['gradient', 'stripes', 'checker'] });
      assert.deepEqual(explicit.data, syntheticSample(i, opts).data, 'the explicit default draws the same clip');
    }
    for (let i = 0; i < 10; i++) {
      const s = syntheticSample(i, { ...opts, textures: ['flat'] });
      assert.equal(s.texture, 'flat');
      // Pixels far from the shape are the background: one colour across the whole clip.
      const bg = new Set<string>();
      for (let t = 0; t < 8; t++) {
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const dx = x + 0.5 - s.centers[2 * t]!,
              dy = y + 0.5 - s.centers[2 * t + 1]!;
            if (Math.hypot(dx, dy) < s.radius * 1.5 + 2) continue;
            const o = ((t * 32 + y) * 32 + x) * 3;
            bg.add(s.data.subarray(o, o + 3).join());
          }
        }
      }
      assert.equal(bg.size, 1, `clip ${i}: background colours ${[...bg].slice(0, 3).join(' | ')}`);
    }
    const onlyGradient = Array.from(
      { length: 10 },
      (_, i) => syntheticSample(i, { ...opts, textures: ['gradient'] }).texture,
    );
    assert.deepEqual(new Set(onlyGradient), new Set(['gradient']));
    assert.throws(() => syntheticSample(0, { ...opts, textures: ['plaid' as never] }), /textures must be some of/);
    assert.throws(() => syntheticSample(0, { ...opts, textures: [] }), /textures must be some of/);
  },
);
