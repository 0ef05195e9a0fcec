import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { collectGarbage } from '../../src/util/gc.js';

/** Allocates 256 MB, touches it and drops it; returns the array-buffer bytes while it was alive. */
function allocateAndDrop(): number {
  const big = new Float32Array(64 << 20).fill(1);
  assert.equal(big[123], 1);
  return process.memoryUsage().arrayBuffers;
}

test('collectGarbage frees a dropped 256 MB buffer', async () => {
  const alive = allocateAndDrop();
  // V8 releases array-buffer memory from a sweeper that may finish after gc() returns: poll briefly.
  let after = alive;
  for (let i = 0; i < 50 && alive - after < 200 << 20; i++) {
    assert.equal(collectGarbage(), true);
    await sleep(10);
    after = process.memoryUsage().arrayBuffers;
  }
  assert.ok(alive - after >= 200 << 20, `array buffers ${alive} → ${after} bytes`);
});
