import '../../src/engine/index.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runSummary } from '../../src/train/loop.js';
import { trainTokenizer } from '../../src/train/tokenizer-run.js';
import { tempDir } from '../io/fixtures.js';

const dir = tempDir('tokenizer-run');

test("trainTokenizer from the library: the preset with the kind's own option, a few steps, then a resume", async () => {
  const out = join(dir, 'run');
  const o = {
    kind: 'magvit2',
    out,
    data: 'moving-mnist',
    preset: 'micro',
    frames: 1,
    batch: 2,
    steps: 3,
    evalEvery: 2,
    seed: 0,
    quiet: true,
    kindOptions: { bits: 6 },
  };
  const first = await trainTokenizer({ ...o, stopAfter: 2 });
  assert.equal(first.step, 2);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.model.kind, 'magvit2');
  // --bits 6 reached the model: a 2^6 vocabulary instead of the preset's 2^10
  assert.equal(config.model.config.n_embed, 64);
  assert.deepEqual([config.data.frames, config.data.size, config.data.channels, config.train.batch], [1, 48, 1, 2]);
  assert.ok(existsSync(join(out, 'checkpoints', 'latest.json')));
  const second = await trainTokenizer(o);
  assert.deepEqual([second.resumedFrom, second.step], [2, 3]);
  const s = runSummary(out, second, null);
  assert.equal(s.step, 3);
  assert.equal(s.evalStep, 3); // the last step is evaluated too
  assert.ok((s.psnr as number) > 0, JSON.stringify(s));
  assert.equal(runSummary(out, second, 'SIGINT').stopped, 'SIGINT');
});

test("trainTokenizer refuses another kind's option by its flag, before writing anything", async () => {
  const out = join(dir, 'refused');
  const base = { out, data: 'moving-mnist', preset: 'tiny', seed: 0, quiet: true };
  await assert.rejects(
    trainTokenizer({ ...base, kind: 'magvit2', kindOptions: { tokens: 8 } }),
    /^VtokError: --tokens applies to larp only, not magvit2$/,
  );
  await assert.rejects(
    trainTokenizer({ ...base, kind: 'magvit2', kindOptions: { prior: false } }),
    /--no-prior applies to larp only, not magvit2/,
  );
  await assert.rejects(
    trainTokenizer({ ...base, kind: 'larp', kindOptions: { bits: 8 } }),
    /--bits applies to magvit2 only, not larp/,
  );
  await assert.rejects(
    trainTokenizer({ ...base, kind: 'larp', preset: 'huge' }),
    /unknown preset "huge" for larp \(known: tiny, small, natural, base\)/,
  );
  assert.equal(existsSync(out), false);
});
