import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRng, setDefaultRng } from '../engine/index.js';
import type { Module } from '../nn/module.js';
import type { TrainStep } from '../nn/step.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';
import { progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { checkpointDir, loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import { type Series, writeCurves } from './curves.js';

/**
 * The one training loop every model uses. The model side (a TrainTask) owns its modules and compiled step
 * functions (generator, and discriminator where there is one); the loop owns time, files and progress: resume from
 * the latest checkpoint, logging to metrics.jsonl, curves.png, evaluation and samples every N steps, best and latest
 * checkpoints written atomically, a progress bar with rate and ETA, and a clean stop on Ctrl-C (checkpoint first).
 */
export interface TrainTask<B> {
  /** Modules whose weights are checkpointed, by file name ("model", "discriminator"). */
  modules: Record<string, Module>;
  /** Compiled step functions whose optimizer state is checkpointed. */
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

export interface LoopResult { step: number; resumedFrom: number; last: Record<string, number>; evals: Record<string, number>[] }

export async function trainLoop<B>(task: TrainTask<B>, o: LoopOptions<B>): Promise<LoopResult> {
  mkdirSync(join(o.runDir, 'samples'), { recursive: true });
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
  }

  // metrics.jsonl: drop lines past the checkpoint (they belong to the interrupted tail that will be redone).
  const metricsPath = join(o.runDir, 'metrics.jsonl');
  const series: Series = new Map();
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

  const save = (step: number, isBest = false) =>
    saveCheckpoint(o.runDir, {
      step,
      weights: Object.fromEntries(Object.entries(task.modules).map(([n, m]) => [n, m.stateDict()])),
      optimizers: Object.fromEntries(Object.entries(task.steps).map(([n, s]) => [n, s.optimizerState()])),
      state: { rng: defaultRng().state(), best, config: o.config, savedAt: new Date().toISOString() },
    }, { best: isBest });

  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\nstopping after this step (checkpoint first); Ctrl-C again to abort\n');
  };
  process.on('SIGINT', onSigint);

  const bar = progress('train', o.totalSteps, { quiet: o.quiet });
  const evals: Record<string, number>[] = [];
  let step = start;
  let last: Record<string, number> = {};
  const logEvery = o.logEvery ?? 10, evalEvery = o.evalEvery ?? 0, ckptEvery = o.checkpointEvery ?? 500;
  try {
    if (step < o.totalSteps) {
      for await (const batch of o.batches(start)) {
        last = task.iterate(batch, step);
        if (!Number.isFinite(last.loss)) throw new VtokError(`loss is ${last.loss} at step ${step}: training diverged (lower the learning rate?)`, o.runDir);
        step++;
        bar.update(step, last);
        if (step % logEvery === 0 || step === o.totalSteps) log({ step, ...last });
        const done = step >= o.totalSteps || stopRequested || (o.stopAfter !== undefined && step - start >= o.stopAfter);
        let isBest = false;
        if (evalEvery && (step % evalEvery === 0 || step >= o.totalSteps) && task.evaluate) {
          const ev = await task.evaluate(step);
          evals.push(ev);
          const rec: Record<string, number> = { step };
          for (const [k, v] of Object.entries(ev)) rec[`eval/${k}`] = v;
          log(rec);
          if (o.best && ev[o.best.metric] !== undefined) {
            const v = ev[o.best.metric];
            if (best === null || (o.best.mode === 'min' ? v < best : v > best)) {
              best = v;
              isBest = true;
            }
          }
          if (task.samples) await task.samples(join(o.runDir, 'samples'), step);
        }
        if (step % logEvery === 0 || done) writeCurves(join(o.runDir, 'curves.png'), series);
        if (step % ckptEvery === 0 || done || isBest) save(step, isBest);
        if (done) break;
      }
    }
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
  }
  return { step, resumedFrom: start, last, evals };
}

function record(series: Series, rec: Record<string, number>): void {
  for (const [k, v] of Object.entries(rec)) {
    if (k === 'step' || typeof v !== 'number') continue;
    if (!series.has(k)) series.set(k, []);
    series.get(k)!.push({ step: rec.step, value: v });
  }
}
