import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { tempDir } from '../io/fixtures.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('the README main command: vtok demo runs the shipped tiny MAGVIT-v2 to tokens and back', () => {
  const out = tempDir('demo');
  const r = spawnSync(process.execPath, [MAIN, 'demo', '--out', out, '--clips', '2', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.kind, 'magvit2');
  assert.equal(s.vocabSize, 1024);
  // an all-background reconstruction scores about 14 dB on these clips; the shipped weights must do far better
  assert.ok(s.psnr > 20, `PSNR ${s.psnr}`);
  assert.ok(existsSync(join(out, 'demo.gif')) && existsSync(join(out, 'demo.vtok')));
});
