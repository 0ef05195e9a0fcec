import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import '../../src/engine/index.js'; // installs the Node backend
import { blockMeanMse, runLarpPriorStudy, type StudyResults } from '../../src/studies/larp-prior/index.js';
import { tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

/** Every number in the results, with its path. */
function numbers(x: unknown, path = ''): [string, number][] {
  if (typeof x === 'number') return [[path, x]];
  if (Array.isArray(x)) return x.flatMap((v, i) => numbers(v, `${path}[${i}]`));
  if (x && typeof x === 'object') return Object.entries(x).flatMap(([k, v]) => numbers(v, path ? `${path}.${k}` : k));
  return [];
}

test('vtok study larp-prior runs end to end at the micro budget, resumes, and writes finite results', async () => {
  const out = join(tempDir('study'), 'larp-prior');
  const lines: string[] = [];
  const r = await runLarpPriorStudy({ out, budget: 'micro', seed: 3, quiet: true, log: (l) => lines.push(l) });
  for (const f of [
    'results.json',
    'results.md',
    'samples.png',
    'reconstructions.png',
    'samples-prior.png',
    'samples-noprior.png',
    'classifier/classifier.safetensors',
    'larp-prior/checkpoints/latest.json',
    'larp-noprior/checkpoints/latest.json',
    'gpt-prior/checkpoints/latest.json',
    'tokens-noprior.safetensors',
  ]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;
  assert.deepEqual(saved, JSON.parse(JSON.stringify(r)));
  const nums = numbers(saved.arms);
  assert.ok(nums.length > 20);
  for (const [k, v] of nums) assert.ok(Number.isFinite(v), `${k} = ${v}`);
  for (const arm of [saved.arms.prior, saved.arms.noprior]) {
    assert.ok(arm.recon.psnr > 0 && arm.ar.nll_nats > 0 && arm.generation.frechet >= 0, JSON.stringify(arm));
    assert.equal(arm.ar.per_position_nats.length, saved.budget.tokens);
    assert.ok(Math.abs(arm.ar.nll_bits - arm.ar.nll_nats / Math.LN2) < 1e-9);
    // the untrained GPT can do no better than a few nats over a 256-token vocabulary
    assert.ok(arm.ar.nll_nats < Math.log(257) + 1, `${arm.ar.nll_nats}`);
  }
  assert.ok(
    Number.isFinite(saved.reference.frechet_real_vs_real) &&
      saved.reference.psnr_mean_clip > 0 &&
      Number.isFinite(saved.reference.psnr_mean_clip),
  );
  // finer blocks keep more: the patch's mean colour beats the clip's
  assert.ok(saved.reference.psnr_patch_colour > saved.reference.psnr_clip_colour, JSON.stringify(saved.reference));
  assert.match(
    readFileSync(join(out, 'results.md'), 'utf8'),
    /\| \*\*AR validation NLL \(nats\/token\)\*\* ↓ \| \*\*\d+\.\d{3}\*\* \| \*\*\d+\.\d{3}\*\* \|/,
  );
  assert.ok(statSync(join(out, 'samples.png')).size > 100);
  assert.ok(
    lines.some((l) => l.startsWith('[6/6]')),
    lines.join('\n'),
  );

  // a second run finds every stage done and reproduces the same results
  const lines2: string[] = [];
  const r2 = await runLarpPriorStudy({ out, budget: 'micro', seed: 3, quiet: true, log: (l) => lines2.push(l) });
  assert.deepEqual(r2, r);
  assert.ok(
    lines2.some((l) => /classifier: done/.test(l)) &&
      lines2.some((l) => /larp-noprior: done/.test(l)) &&
      lines2.some((l) => /tokens: done/.test(l)),
    lines2.join('\n'),
  );

  // another seed in the same directory is refused, as are unknown budgets and studies (through the CLI)
  await assert.rejects(runLarpPriorStudy({ out, budget: 'micro', seed: 4, quiet: true }), /another budget or seed/);
  const bad = await vtok('study', 'larp-prior', '--budget', 'enormous', '--out', join(out, 'x'));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown study budget "enormous" \(known: micro, tiny, tiny-long\)/);
  const unknown = await vtok('study', 'nope');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown study "nope"/);
});

test('blockMeanMse: zero for block-constant clips, the within-block variance otherwise', () => {
  // 1 clip, 1 channel, 2×2×4: blocks of 1×2×2 are constant in the left half, alternate ±a in the right half
  const data = new Float32Array(16);
  for (let t = 0; t < 2; t++)
    for (let y = 0; y < 2; y++)
      for (let x = 0; x < 4; x++) data[(t * 2 + y) * 4 + x] = x < 2 ? 0.25 * t : (x + y) % 2 ? 0.5 : -0.5;
  const clips = { data, shape: [1, 1, 2, 2, 4] as [number, number, number, number, number] };
  // right-half values are ±0.5 (±63.75 in 8-bit units) around a block mean of 0: squared error 63.75² on half the
  // pixels
  assert.ok(Math.abs(blockMeanMse(clips, [1, 2, 2]) - 63.75 ** 2 / 2) < 1e-6);
  assert.ok(
    blockMeanMse(
      { data: new Float32Array(16).fill(0.3), shape: [1, 1, 2, 2, 4] as [number, number, number, number, number] },
      [2, 2, 4],
    ) < 1e-9,
  );
  assert.throws(() => blockMeanMse(clips, [1, 2, 3]), /does not tile/);
});
