import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MovingMnist, loadMnist, movingMnistSample } from '../../src/data/moving-mnist.js';

test('the MNIST digits ship in the package: 60000 train and 10000 test images with labels', () => {
  const train = loadMnist('train');
  const testSplit = loadMnist('test');
  assert.equal(train.count, 60000);
  assert.equal(testSplit.count, 10000);
  assert.equal(train.images.length, 60000 * 784);
  // Label frequencies are those of MNIST: every class between 8% and 12%.
  const counts = new Array(10).fill(0);
  for (const l of testSplit.labels) counts[l]++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `class count ${c}`);
});

test('samples are deterministic in (split, seed, index); the test split ignores the seed', () => {
  const a = movingMnistSample(5, { seed: 1 });
  assert.deepEqual(movingMnistSample(5, { seed: 1 }).frames, a.frames);
  assert.notDeepEqual(movingMnistSample(5, { seed: 2 }).frames, a.frames);
  assert.notDeepEqual(movingMnistSample(6, { seed: 1 }).frames, a.frames);
  assert.deepEqual(
    movingMnistSample(3, { split: 'test', seed: 1 }).frames,
    movingMnistSample(3, { split: 'test', seed: 99 }).frames,
  );
  assert.notDeepEqual(movingMnistSample(3, { split: 'test' }).frames, movingMnistSample(3, { split: 'train' }).frames);
});

test('every frame is exactly two MNIST digits pasted at the recorded positions, summed and clipped', () => {
  const mnist = loadMnist('train');
  for (const index of [0, 1, 2, 3]) {
    const s = movingMnistSample(index);
    assert.equal(s.frames.length, 20 * 64 * 64);
    assert.equal(s.digitIndex.length, 2);
    for (let t = 0; t < 20; t++) {
      const expect = new Uint16Array(64 * 64);
      for (let k = 0; k < 2; k++) {
        const x0 = Math.trunc(s.positions[(t * 2 + k) * 2]!);
        const y0 = Math.trunc(s.positions[(t * 2 + k) * 2 + 1]!);
        for (let y = 0; y < 28; y++)
          for (let x = 0; x < 28; x++) {
            if (y0 + y < 0 || y0 + y >= 64 || x0 + x < 0 || x0 + x >= 64) continue;
            expect[(y0 + y) * 64 + x0 + x]! += mnist.images[s.digitIndex[k]! * 784 + y * 28 + x]!;
          }
      }
      const frame = s.frames.subarray(t * 4096, (t + 1) * 4096);
      for (let i = 0; i < 4096; i++)
        assert.equal(frame[i], Math.min(255, expect[i]!), `clip ${index} frame ${t} pixel ${i}`);
    }
  }
});

test('motion statistics: speeds 2–6 px/frame, uniform directions, bounded positions, bounces at the edges', () => {
  const speeds = new Set<number>();
  let cosSum = 0,
    sinSum = 0,
    digits = 0,
    bounces = 0,
    clipsWithBounce = 0,
    mean = 0;
  const labels = new Set<number>();
  const N = 150;
  for (let i = 0; i < N; i++) {
    const s = movingMnistSample(i, { seed: 7 });
    s.digitLabel.forEach((l) => {
      labels.add(l);
    });
    let bounced = false;
    for (let k = 0; k < 2; k++) {
      const vx = s.velocities[2 * k]!,
        vy = s.velocities[2 * k + 1]!;
      const speed = Math.hypot(vx, vy);
      assert.ok(
        Math.abs(speed - Math.round(speed)) < 1e-9 && Math.round(speed) >= 2 && Math.round(speed) <= 6,
        `speed ${speed}`,
      );
      speeds.add(Math.round(speed));
      cosSum += vx / speed;
      sinSum += vy / speed;
      digits++;
      let px = s.positions[k * 2]!,
        py = s.positions[k * 2 + 1]!;
      let dx = vx,
        dy = vy;
      for (let t = 1; t < 20; t++) {
        const x = s.positions[(t * 2 + k) * 2]!,
          y = s.positions[(t * 2 + k) * 2 + 1]!;
        assert.ok(x >= -2 && x <= 36 + 2 && y >= -2 && y <= 36 + 2, `position (${x}, ${y}) out of bounds`);
        // Each step moves by the same speed; a component only changes by flipping sign, next to an edge.
        const sx = x - px,
          sy = y - py;
        assert.ok(Math.abs(Math.hypot(sx, sy) - speed) < 1e-9);
        for (const [d, sd, p] of [
          [dx, sx, px],
          [dy, sy, py],
        ] as const) {
          if (Math.abs(sd - d) > 1e-9) {
            assert.ok(Math.abs(sd + d) < 1e-9, 'velocity flips sign');
            assert.ok(p + d < -2 || p + d > 38, `bounce only where the next step would leave [-2, 38] (at ${p})`);
            bounces++;
            bounced = true;
          }
        }
        [dx, dy, px, py] = [sx, sy, x, y];
      }
    }
    if (bounced) clipsWithBounce++;
    mean += s.frames.reduce((a, v) => a + v, 0) / s.frames.length / N;
  }
  assert.deepEqual([...speeds].sort(), [2, 3, 4, 5, 6]);
  assert.ok(Math.abs(cosSum / digits) < 0.15 && Math.abs(sinSum / digits) < 0.15, 'directions are uniform');
  assert.ok(clipsWithBounce > N / 2, `${clipsWithBounce} of ${N} clips bounce`);
  assert.ok(bounces > N);
  assert.equal(labels.size, 10);
  // Two digits of mean ~0.13·255 over 784 pixels on 4096: about 12.7 per pixel (a little less from overlaps).
  assert.ok(mean > 9 && mean < 15, `mean intensity ${mean}`);
});

test('the dataset gives 20×64×64 clips, gray or as RGB', () => {
  const gray = new MovingMnist({ length: 10 });
  assert.deepEqual(gray.shape, { channels: 1, frames: 20, height: 64, width: 64 });
  const g = gray.get(4).data;
  assert.equal(g.length, 20 * 64 * 64);
  const rgb = new MovingMnist({ length: 10, channels: 3 }).get(4).data;
  assert.equal(rgb.length, 3 * g.length);
  for (let i = 0; i < g.length; i += 97)
    assert.deepEqual([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]], [g[i], g[i], g[i]]);
  assert.throws(() => gray.get(10), /out of range/);
  assert.equal(gray.get(4).label, undefined);
});
