import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
 * Where a signal must land within a step or a save, the child holds there until the test has sent it, so the
 * tests hold on a loaded machine.
 */
const CHILD = fileURLToPath(new URL('./interrupt-child.js', import.meta.url));

interface Run {
  proc: ChildProcess;
  /** Resolves when the child has printed "step n". */
  reached(n: number): Promise<void>;
  /** Resolves when the child holds a save of step ≥ n (with `holdSave`); returns the step. */
  saveHeld(n: number): Promise<number>;
  /** Lets a held step, or a held save, go on. */
  go(what: 'step' | 'save'): void;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>;
}

interface ChildOptions {
  total: number;
  stepMs: number;
  hidden: number;
  ckptEvery: number;
  holdStep?: number;
  holdSave?: number;
}

function child(runDir: string, o: ChildOptions): Run {
  const args = [runDir, o.total, o.stepMs, o.hidden, o.ckptEvery, o.holdStep ?? 0, o.holdSave ?? 0].map(String);
  const env = { ...process.env, VTOK_THREADS: '1' };
  const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '',
    stderr = '';
  const waiters: { re: RegExp; n: number; resolve: (n: number) => void }[] = [];
  proc.stdout!.on('data', (b) => {
    stdout += b;
    for (const w of [...waiters]) {
      const seen = [...stdout.matchAll(w.re)].map((m) => Number(m[1]));
      const last = seen.length ? seen[seen.length - 1]! : 0;
      if (last >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(last);
      }
    }
  });
  proc.stderr!.on('data', (b) => (stderr += b));
  let t0 = 0;
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    ms: number;
  }>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })));
  const line = (re: RegExp, n: number) => new Promise<number>((resolve) => waiters.push({ re, n, resolve }));
  return {
    proc,
    reached: (n) =>
      line(/step (\d+)/g, n).then(() => {
        t0 = Date.now();
      }),
    saveHeld: (n) => line(/save (\d+) held/g, n),
    go: (what) => writeFileSync(`${runDir}.go-${what}`, ''),
    done,
  };
}

const latestStep = (runDir: string) =>
  JSON.parse(readFileSync(join(runDir, 'checkpoints', 'latest.json'), 'utf8')).step as number;
const lastPrinted = (stdout: string) => Math.max(...[...stdout.matchAll(/step (\d+)/g)].map((m) => Number(m[1])));

test(
  'one Ctrl-C: the current step finishes, a checkpoint is written at once ' +
    '(not at the next evaluation), exit 130; the re-run says where it resumes',
  async () => {
    const run = join(tempDir('int-one'), 'run');
    const c = child(run, { total: 1000, stepMs: 300, hidden: 16, ckptEvery: 1000, holdStep: 3 });
    await c.reached(3);
    c.proc.kill('SIGINT');
    c.go('step');
    const r = await c.done;
    assert.equal(r.code, 130, r.stderr);
    // waiting for the next evaluation (step 1000) would take 5 minutes; a loaded machine may take a few seconds
    assert.ok(r.ms < 30_000, `stopped ${r.ms} ms after the signal`);
    const stopped = lastPrinted(r.stdout);
    assert.equal(stopped, 3, 'the step under way finished, and no other began');
    assert.equal(latestStep(run), stopped);
    assert.match(
      r.stderr,
      new RegExp(`stopped after step ${stopped} of 1000 with a checkpoint; run the same command to resume`),
    );
    // no evaluation ran (every 1000 steps), so the summary must not claim one
    assert.doesNotMatch(r.stderr, /evaluation/);

    const again = child(run, { total: stopped + 2, stepMs: 0, hidden: 16, ckptEvery: 1000 });
    const r2 = await again.done;
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, new RegExp(`resuming from step ${stopped} of ${stopped + 2}`));
    assert.equal(lastPrinted(r2.stdout), stopped + 2);
    assert.equal(latestStep(run), stopped + 2);
  },
);

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
  const c = child(run, { total: 1000, stepMs: 0, hidden: 16, ckptEvery: 2, holdStep: 3 });
  await c.reached(3);
  c.proc.kill('SIGINT');
  // apart enough to arrive as two signals (the kernel merges a signal into one still pending)
  await new Promise((r) => setTimeout(r, 200));
  c.proc.kill('SIGINT');
  c.go('step');
  const r = await c.done;
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /stopping now; the last checkpoint written is kept/);
  // the second signal came before any new save began: the checkpoint of step 2 is the latest, and it loads
  assert.equal(latestStep(run), 2);
  assert.equal(loadCheckpoint(checkpointDir(run)!).step, 2);
  assert.deepEqual(
    readdirSync(join(run, 'checkpoints')).filter((d) => d.includes('.tmp')),
    [],
  );
});

test(
  'a second Ctrl-C during the save, and kill -9 during a save: the previous ' +
    'checkpoint stays; the next run removes the temp directory and resumes',
  async () => {
    for (const how of ['second SIGINT', 'SIGKILL'] as const) {
      const run = join(tempDir('int-save'), 'run');
      // step 2's checkpoint is written; the next save (after the first Ctrl-C at step 3, or the regular one after
      // step 4) holds with its weights written and its optimizer file begun
      const c = child(run, { total: 1000, stepMs: 0, hidden: 16, ckptEvery: 2, holdStep: 3, holdSave: 3 });
      await c.reached(3);
      if (how === 'second SIGINT') c.proc.kill('SIGINT');
      c.go('step');
      const held = await c.saveHeld(3);
      const tmp = readdirSync(join(run, 'checkpoints')).find((d) => /\.tmp-\d+$/.test(d));
      assert.equal(tmp, `step-${String(held).padStart(7, '0')}.tmp-${c.proc.pid}`, `${how}: the save under way`);
      c.proc.kill(how === 'SIGKILL' ? 'SIGKILL' : 'SIGINT');
      c.go('save'); // a child that survived the signal finishes, and the assertion below says so
      const r = await c.done;
      assert.equal(
        r.signal,
        how === 'SIGKILL' ? 'SIGKILL' : 'SIGINT',
        `${how}: killed during the save (code ${r.code}): ${r.stderr}`,
      );
      const kept = latestStep(run);
      assert.equal(kept, 2, `${how}: latest.json points to the checkpoint before the interrupted save`);
      assert.equal(loadCheckpoint(checkpointDir(run)!).step, kept);
      assert.ok(existsSync(join(run, 'checkpoints', tmp!)), `${how}: the dead process left ${tmp}`);

      const again = child(run, { total: kept + 1, stepMs: 0, hidden: 16, ckptEvery: 1000 });
      const r2 = await again.done;
      assert.equal(r2.code, 0, r2.stderr);
      const removed = `removed 1 temp file\\(s\\) left by a stopped process: ${tmp!.replace('.', '\\.')}`;
      assert.match(r2.stderr, new RegExp(removed));
      assert.match(r2.stderr, new RegExp(`resuming from step ${kept} of ${kept + 1}`));
      assert.deepEqual(
        readdirSync(join(run, 'checkpoints')).filter((d) => d.includes('.tmp')),
        [],
      );
    }
  },
);

test(
  'dispose(): after a stop on a signal a further one exits with ' +
    '130 (never a death by signal); else the default action is back',
  async () => {
    const mod = JSON.stringify(new URL('../../src/util/interrupt.js', import.meta.url).href);
    type Exit = { code: number | null; signal: NodeJS.Signals | null; stderr: string };
    const run = (stopFirst: boolean) =>
      new Promise<Exit>((resolve) => {
        const script = `import { watchInterrupts } from ${mod};
      const s = watchInterrupts('stopping');
      ${stopFirst ? "process.kill(process.pid, 'SIGINT');" : ''}
      await s.poll();
      s.dispose();
      process.kill(process.pid, 'SIGINT');
      setTimeout(() => process.stderr.write('still running'), 10_000);`;
        const p = spawn(process.execPath, ['--input-type=module', '-e', script], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        p.stderr.on('data', (b) => (stderr += b));
        p.on('close', (code, signal) => resolve({ code, signal, stderr }));
      });
    const stopped = await run(true);
    assert.deepEqual([stopped.code, stopped.signal], [130, null], stopped.stderr);
    const idle = await run(false);
    assert.deepEqual([idle.code, idle.signal], [null, 'SIGINT'], idle.stderr);
  },
);

test(
  'vtok train: Ctrl-C stops after the step with a checkpoint ' +
    'and a summary that says so; a finished run re-run says so',
  async () => {
    const run = join(tempDir('int-train'), 'run');
    const args = [
      'train',
      'magvit2',
      '--preset',
      'micro',
      '--batch',
      '1',
      '--eval-every',
      '50',
      '--out',
      run,
      '--quiet',
    ];
    const p = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), ...args, '--steps', '50'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VTOK_THREADS: '1' } },
    );
    let stdout = '',
      stderr = '';
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
  },
);
