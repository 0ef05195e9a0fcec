import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRng, setDefaultRng } from '../engine/core.js';
import type { Module } from '../nn/module.js';
import type { TrainStep } from '../nn/step.js';
import { removeStaleTemps, writeFileAtomic } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';
import { type Interrupt, Interrupted, watchInterrupts } from '../util/interrupt.js';
import { progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { checkpointDir, loadCheckpoint } from '../nn/checkpoint.js';
import { saveCheckpoint } from '../nn/checkpoint-write.js';
import { type Series, writeCurves } from './curves.js';

/**
 * The one training loop every model uses. The model side (a TrainTask) owns its modules and compiled step
 * functions (generator, and discriminator where there is one); the loop owns time, files and progress: resume from
 * the latest checkpoint, logging to metrics.jsonl, curves.png, evaluation and samples every N steps, best and latest
 * checkpoints written atomically, a progress bar with rate and ETA, and a clean stop on Ctrl-C or SIGTERM: the
 * current step finishes, a checkpoint is written, and the loop throws `Interrupted` (see src/util/interrupt.ts for
 * what a second signal does).
 */
export interface TrainTask<B> {
  /** Modules whose weights are checkpointed, by file name ("model", "discriminator"). */
  modules: Record<string, Module>;
  /** Compiled step functions whose optimizer state is checkpointed. */
  // biome-ignore lint/suspicious/noExplicitAny: a task's steps take different batch types (generator, discriminator)
  steps: Record<string, TrainStep<any>>;
  /** One iteration: run the step function(s) on a batch, return scalar metrics (must include "loss"). */
  iterate(batch: B, step: number): Record<string, number>;
  /** Held-out evaluation; its metrics are logged with an "eval/" prefix. */
  evaluate?(step: number): Promise<Record<string, number>> | Record<string, number>;
  /** Writes samples (reconstructions, generations) for a person to look at. */
  samples?(dir: string, step: number): Promise<void> | void;
}

export interface LoopOptions<B> {
  runDir: string;
  totalSteps: number;
  /** Batches from the given batch index on (a pure function of it, so a resumed run sees the same data). */
  batches(start: number): AsyncIterable<B>;
  config: Record<string, unknown>;
  logEvery?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  /** Eval metric that decides the "best" checkpoint. */
  best?: { metric: string; mode: 'min' | 'max' };
  quiet?: boolean;
  /** Stop (with a checkpoint) after this many steps in this process: for tests of resume. */
  stopAfter?: number;
}

export interface LoopResult {
  step: number;
  resumedFrom: number;
  last: Record<string, number>;
  /** Evaluations run in this process. */
  evals: Record<string, number>[];
  /** The newest evaluation of the run (possibly from an earlier process), with its step. */
  lastEval: { step: number; metrics: Record<string, number> } | null;
}

/** The loop stopped on a signal after writing its checkpoint; `result` says where it stopped. */
export class TrainingInterrupted extends Interrupted {
  constructor(
    signal: NodeJS.Signals,
    message: string,
    readonly result: LoopResult,
  ) {
    super(signal, message);
  }
}

/**
 * A run's summary: the step reached and the newest evaluation with the step it was made at (`evalStep`), which
 * after an interrupt or on a finished run's re-run is older than `step`; `stopped` names the signal that stopped it.
 */
export function runSummary(run: string, r: LoopResult, stopped: NodeJS.Signals | null): Record<string, unknown> {
  const ev = r.lastEval;
  return { run, step: r.step, ...(stopped ? { stopped } : {}), ...(ev ? { evalStep: ev.step, ...ev.metrics } : {}) };
}

export async function trainLoop<B>(task: TrainTask<B>, o: LoopOptions<B>): Promise<LoopResult> {
  // Listening before the run directory is touched: a signal from here on stops after a step, with a checkpoint,
  // rather than killing the process with a file half made.
  const stop = watchInterrupts('stopping after this step, with a checkpoint');
  try {
    return await runLoop(task, o, stop);
  } finally {
    stop.dispose();
  }
}

async function runLoop<B>(task: TrainTask<B>, o: LoopOptions<B>, stop: Interrupt): Promise<LoopResult> {
  mkdirSync(join(o.runDir, 'samples'), { recursive: true });
  // Temp files and checkpoint directories of a process that died mid-write (kill -9, a second Ctrl-C).
  const stale = [o.runDir, join(o.runDir, 'checkpoints'), join(o.runDir, 'samples')].flatMap((d) =>
    removeStaleTemps(d),
  );
  if (stale.length)
    process.stderr.write(`removed ${stale.length} temp file(s) left by a stopped process: ${stale.join(', ')}\n`);
  const configPath = join(o.runDir, 'config.json');
  if (existsSync(configPath)) {
    const saved = JSON.parse(readFileSync(configPath, 'utf8'));
    if (JSON.stringify(saved.model) !== JSON.stringify(o.config.model)) {
      throw new VtokError('this run directory holds a different model config; use a new --out directory', o.runDir);
    }
  }
  writeFileAtomic(configPath, JSON.stringify(o.config, null, 2));

  let start = 0;
  let best: number | null = null;
  const ckpt = checkpointDir(o.runDir);
  if (ckpt) {
    const c = loadCheckpoint(ckpt);
    for (const [name, m] of Object.entries(task.modules)) {
      const w = c.weights[name];
      if (!w) throw new VtokError(`checkpoint has no weights for "${name}"`, ckpt);
      m.loadStateDict(w, { source: join(ckpt, `${name}.safetensors`) });
    }
    for (const [name, s] of Object.entries(task.steps)) {
      const st = c.optimizers[name];
      if (!st) throw new VtokError(`checkpoint has no optimizer state for "${name}"`, ckpt);
      s.loadOptimizerState(st, c.step, ckpt);
    }
    setDefaultRng(Rng.fromState(c.state.rng as never));
    best = (c.state.best as number | null) ?? null;
    start = c.step;
    process.stderr.write(
      start >= o.totalSteps
        ? `${o.runDir}: already at step ${start} of ${o.totalSteps}; ` +
            'nothing to train (raise the number of steps to continue)\n'
        : `${o.runDir}: resuming from step ${start} of ${o.totalSteps} (weights, ` +
            `optimizer state, RNG and data position from ${ckpt})\n`,
    );
  }

  // metrics.jsonl: drop lines past the checkpoint (they belong to the interrupted tail that will be redone).
  const metricsPath = join(o.runDir, 'metrics.jsonl');
  const series: Series = new Map();
  let lastEval: LoopResult['lastEval'] = null;
  const kept: string[] = [];
  if (existsSync(metricsPath)) {
    for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line);
      if (rec.step > start) continue;
      kept.push(line);
      record(series, rec);
    }
  }
  writeFileSync(metricsPath, kept.length ? `${kept.join('\n')}\n` : '');

  const log = (rec: Record<string, number>) => {
    appendFileSync(metricsPath, `${JSON.stringify(rec)}\n`);
    record(series, rec);
  };
  function record(series: Series, rec: Record<string, number>): void {
    const ev: Record<string, number> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (k === 'step' || typeof v !== 'number') continue;
      if (!series.has(k)) series.set(k, []);
      series.get(k)!.push({ step: rec.step!, value: v });
      if (k.startsWith('eval/')) ev[k.slice(5)] = v;
    }
    if (Object.keys(ev).length) lastEval = { step: rec.step!, metrics: ev };
  }

  const save = (step: number, isBest = false) =>
    saveCheckpoint(
      o.runDir,
      {
        step,
        weights: Object.fromEntries(Object.entries(task.modules).map(([n, m]) => [n, m.stateDict()])),
        optimizers: Object.fromEntries(Object.entries(task.steps).map(([n, s]) => [n, s.optimizerState()])),
        state: { rng: defaultRng().state(), best, config: o.config, savedAt: new Date().toISOString() },
      },
      { best: isBest },
    );

  const bar = progress('train', o.totalSteps, { quiet: o.quiet });
  const evals: Record<string, number>[] = [];
  let step = start;
  let last: Record<string, number> = {};
  const logEvery = o.logEvery ?? 10,
    evalEvery = o.evalEvery ?? 0,
    ckptEvery = o.checkpointEvery ?? 500;
  try {
    if (step < o.totalSteps) {
      for await (const batch of o.batches(start)) {
        last = task.iterate(batch, step);
        if (!Number.isFinite(last.loss))
          throw new VtokError(
            `loss is ${last.loss} at step ${step}: training diverged (lower the learning rate?)`,
            o.runDir,
          );
        step++;
        bar.update(step, last);
        if (step % logEvery === 0 || step === o.totalSteps) log({ step, ...last });
        // A stop asked for during the step skips this step's evaluation: the checkpoint comes first, at once.
        const interrupted = await stop.poll();
        let isBest = false;
        if (!interrupted && evalEvery && (step % evalEvery === 0 || step >= o.totalSteps) && task.evaluate) {
          const ev = await task.evaluate(step);
          evals.push(ev);
          const rec: Record<string, number> = { step };
          for (const [k, v] of Object.entries(ev)) rec[`eval/${k}`] = v;
          log(rec);
          if (o.best && ev[o.best.metric] !== undefined) {
            const v = ev[o.best.metric]!;
            if (best === null || (o.best.mode === 'min' ? v < best : v > best)) {
              best = v;
              isBest = true;
            }
          }
          if (task.samples) await task.samples(join(o.runDir, 'samples'), step);
        }
        const stopping = stop.signal !== null;
        // From here a second signal kills the process at once; the save below is atomic, the previous one stays.
        if (stopping) stop.release();
        const done = step >= o.totalSteps || stopping || (o.stopAfter !== undefined && step - start >= o.stopAfter);
        if (step % logEvery === 0 || done) writeCurves(join(o.runDir, 'curves.png'), series);
        if (step % ckptEvery === 0 || done || isBest) save(step, isBest);
        if (done) break;
      }
    }
  } finally {
    bar.stop();
  }
  if (stop.signal) {
    const ev = lastEval as LoopResult['lastEval'];
    const evalNote = ev ? `; its last evaluation is from step ${ev.step}` : '';
    throw new TrainingInterrupted(
      stop.signal,
      `stopped after step ${step} of ${o.totalSteps} with a checkpoint${evalNote}; run the same command to resume`,
      { step, resumedFrom: start, last, evals, lastEval },
    );
  }
  return { step, resumedFrom: start, last, evals, lastEval };
}
