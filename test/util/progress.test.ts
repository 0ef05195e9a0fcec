import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from '../../src/util/progress.js';

test('formatBytes shows a byte count in decimal units to three digits', () => {
  assert.deepEqual([0, 999, 1000, 12_345, 173_200_000, 2_960_000_000].map(formatBytes), [
    '0 B',
    '999 B',
    '1.00 kB',
    '12.3 kB',
    '173 MB',
    '2.96 GB',
  ]);
});
