import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import '../../src/engine/index.js'; // installs the Node backend
import { checkpointDir, loadCheckpoint } from '../../src/nn/checkpoint.js';
import { tempDir } from '../io/fixtures.js';
import { vtok } from './run-vtok.js';

/**
 * Interrupts with real signals on a child process that runs the shared training loop (interrupt-child.ts): one
 * and two SIGINTs, SIGTERM, a second SIGINT and kill -9 during a save; then the next run cleans up and resumes.
 */
const CHILD = fileURLToPath(new URL('./interrupt-child.js', import.meta.url));

interface Run {
  proc: ChildProcess;
  /** Resolves when the child has printed "step n". */
  reached(n: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>;
}

function child(runDir: string, o: { total: number; stepMs: number; hidden: number; ckptEvery: number }): Run {
  const proc = spawn(process.execPath, [CHILD, runDir, String(o.total), String(o.stepMs), String(o.hidden), String(o.ckptEvery)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VTOK_THREADS: '1' } });
  let stdout = '', stderr = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  proc.stdout!.on('data', (b) => {
    stdout += b;
    const steps = [...stdout.matchAll(/step (\d+)/g)].map((m) => Number(m[1]));
    const last = steps.length ? steps[steps.length - 1]! : 0;
    for (const w of waiters.filter((x) => x.n <= last)) w.resolve();
  });
  proc.stderr!.on('data', (b) => (stderr += b));
  let t0 = 0;
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  return {
    proc,
    reached: (n) => new Promise<void>((resolve) => waiters.push({ n, resolve })).then(() => void (t0 = Date.now())),
    done,
  };
}

const latestStep = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'checkpoints', 'latest.json'), 'utf8')).step as number;
const lastPrinted = (stdout: string) => Math.max(...[...stdout.matchAll(/step (\d+)/g)].map((m) => Number(m[1])));

/** Resolves when a checkpoint save has begun (its temp directory appears). */
function saveStarted(runDir: string): Promise<string> {
  const dir = join(runDir, 'checkpoints');
  return new Promise((resolve) => {
    const w = watch(dir, (_, name) => {
      if (name && /\.tmp-\d+$/.test(String(name))) {
        w.close();
        resolve(String(name));
      }
    });
  });
}

test('one Ctrl-C: the current step finishes, a checkpoint is written at once (not at the next evaluation), exit 130; the re-run says where it resumes', async () => {
  const run = join(tempDir('int-one'), 'run');
  const c = child(run, { total: 1000, stepMs: 300, hidden: 16, ckptEvery: 1000 });
  await c.reached(3);
  c.proc.kill('SIGINT');
  const r = await c.done;
  assert.equal(r.code, 130, r.stderr);
  assert.ok(r.ms < 3000, `stopped ${r.ms} ms after the signal`);
  const stopped = lastPrinted(r.stdout);
  assert.equal(stopped, 3, 'the step under way finished, and no other began');
  assert.equal(latestStep(run), stopped);
  assert.match(r.stderr, new RegExp(`stopped after step ${stopped} of 1000 with a checkpoint; run the same command to resume`));
  // no evaluation ran (every 1000 steps), so the summary must not claim one
  assert.doesNotMatch(r.stderr, /evaluation/);

  const again = child(run, { total: stopped + 2, stepMs: 0, hidden: 16, ckptEvery: 1000 });
  const r2 = await again.done;
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stderr, new RegExp(`resuming from step ${stopped} of ${stopped + 2}`));
  assert.equal(lastPrinted(r2.stdout), stopped + 2);
  assert.equal(latestStep(run), stopped + 2);
});

test('SIGTERM behaves like Ctrl-C (exit 143)', async () => {
  const run = join(tempDir('int-term'), 'run');
  const c = child(run, { total: 1000, stepMs: 200, hidden: 16, ckptEvery: 1000 });
  await c.reached(2);
  c.proc.kill('SIGTERM');
  const r = await c.done;
  assert.equal(r.code, 143, r.stderr);
  assert.equal(latestStep(run), lastPrinted(r.stdout));
  assert.match(r.stderr, /SIGTERM: stopped after step \d+ of 1000 with a checkpoint/);
});

test('two Ctrl-Cs within one step: exit at once, the previous checkpoint is kept intact', async () => {
  const run = join(tempDir('int-two'), 'run');
  const c = child(run, { total: 1000, stepMs: 600, hidden: 16, ckptEvery: 2 });
  await c.reached(3);
  c.proc.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 50));
  c.proc.kill('SIGINT');
  const r = await c.done;
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /stopping now; the last checkpoint written is kept/);
  // the second signal came before any new save began: the checkpoint of step 2 is the latest, and it loads
  assert.equal(latestStep(run), 2);
  assert.equal(loadCheckpoint(checkpointDir(run)!).step, 2);
  assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter((d) => d.includes('.tmp')), []);
});

test('a second Ctrl-C during the save, and kill -9 during a save: the previous checkpoint stays; the next run removes the temp directory and resumes', async () => {
  for (const how of ['second SIGINT', 'SIGKILL'] as const) {
    const run = join(tempDir('int-save'), 'run');
    // ~80 MB per checkpoint (weights + AdamW moments): a save lasts long enough to land a signal in it
    const c = child(run, { total: 1000, stepMs: 300, hidden: 100_000, ckptEvery: 2 });
    // step 3 is under way, step 2's checkpoint is written; the next save is the one after the first Ctrl-C (or
    // the regular one after step 4)
    await c.reached(3);
    const started = saveStarted(run);
    if (how === 'second SIGINT') c.proc.kill('SIGINT');
    const tmp = await started;
    c.proc.kill(how === 'SIGKILL' ? 'SIGKILL' : 'SIGINT');
    const r = await c.done;
    assert.equal(r.signal, how === 'SIGKILL' ? 'SIGKILL' : 'SIGINT', `${how}: killed during the save (code ${r.code}): ${r.stderr}`);
    const kept = latestStep(run);
    assert.equal(kept, 2, `${how}: latest.json points to the checkpoint before the interrupted save`);
    assert.equal(loadCheckpoint(checkpointDir(run)!).step, kept);
    assert.ok(existsSync(join(run, 'checkpoints', tmp)), `${how}: the dead process left ${tmp}`);

    const again = child(run, { total: kept + 1, stepMs: 0, hidden: 100_000, ckptEvery: 1000 });
    const r2 = await again.done;
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, new RegExp(`removed 1 temp file\\(s\\) left by a stopped process: ${tmp.replace('.', '\\.')}`));
    assert.match(r2.stderr, new RegExp(`resuming from step ${kept} of ${kept + 1}`));
    assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter((d) => d.includes('.tmp')), []);
  }
});

test('vtok train: Ctrl-C stops after the step with a checkpoint and a summary that says so; a finished run re-run says so', async () => {
  const run = join(tempDir('int-train'), 'run');
  const args = ['train', 'magvit2', '--preset', 'micro', '--batch', '1', '--eval-every', '50', '--out', run, '--quiet'];
  const p = spawn(process.execPath, [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), ...args, '--steps', '50'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VTOK_THREADS: '1' } });
  let stdout = '', stderr = '';
  p.stdout.on('data', (b) => (stdout += b));
  p.stderr.on('data', (b) => (stderr += b));
  // config.json is written when the loop starts; the first step (with its compile) is then under way
  while (!existsSync(join(run, 'config.json'))) await new Promise((r) => setTimeout(r, 50));
  p.kill('SIGINT');
  const code = await new Promise<number | null>((r) => p.on('close', r));
  assert.equal(code, 130, stderr);
  const summary = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.equal(summary.stopped, 'SIGINT');
  assert.ok(summary.step >= 1 && summary.step < 50, stdout);
  assert.equal(summary.psnr, undefined, 'no evaluation was made, so none is reported');
  assert.equal(latestStep(run), summary.step);
  assert.match(stderr, new RegExp(`vtok: Ctrl-C: stopped after step ${summary.step} of 50 with a checkpoint`));

  const r = await vtok(...args, '--steps', String(summary.step));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`already at step ${summary.step} of ${summary.step}; nothing to train`));
  assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).step, summary.step);
});
