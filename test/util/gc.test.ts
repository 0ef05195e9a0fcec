import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectGarbage } from '../../src/util/gc.js';

test('collectGarbage frees a dropped 256 MB buffer at once', () => {
  let big: Float32Array | null = new Float32Array(64 << 20).fill(1);
  assert.equal(big[123], 1);
  const before = process.memoryUsage().arrayBuffers;
  big = null;
  assert.equal(collectGarbage(), true);
  const after = process.memoryUsage().arrayBuffers;
  assert.ok(before - after >= 200 << 20, `array buffers ${before} → ${after} bytes`);
});
