import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/index.js';
import { loadTensors, saveTensors } from './weights.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';

/**
 * Checkpoints in a run directory: `checkpoints/step-NNNNNNN/` holds weights (safetensors per module), optimizer
 * state (safetensors per step function) and `state.json` (step, RNG states, loop counters). The directory is
 * written under a temporary name and renamed into place, then the pointer `checkpoints/latest.json` (and
 * `best.json`) is replaced atomically, so an interrupted save never leaves a pointer to a torn checkpoint.
 */
export interface CheckpointContent {
  step: number;
  /** Weights per module name ("model", "discriminator", "ema"…). */
  weights: Record<string, Map<string, Tensor>>;
  /** Optimizer state per step-function name. */
  optimizers: Record<string, Map<string, Tensor>>;
  /** JSON-able loop state: RNG states, data position, best metric, config. */
  state: Record<string, unknown>;
}

const dirName = (step: number) => `step-${String(step).padStart(7, '0')}`;

export function saveCheckpoint(runDir: string, c: CheckpointContent, opts: { best?: boolean; keep?: number } = {}): string {
  const root = join(runDir, 'checkpoints');
  const final = join(root, dirName(c.step));
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [name, w] of Object.entries(c.weights)) saveTensors(join(tmp, `${name}.safetensors`), w);
  for (const [name, o] of Object.entries(c.optimizers)) saveTensors(join(tmp, `optimizer.${name}.safetensors`), o);
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify({ step: c.step, ...c.state }, null, 1));
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeFileAtomic(join(root, 'latest.json'), JSON.stringify({ dir: dirName(c.step), step: c.step }));
  if (opts.best) writeFileAtomic(join(root, 'best.json'), JSON.stringify({ dir: dirName(c.step), step: c.step }));
  prune(root, opts.keep ?? 2);
  return final;
}

/** Keeps the newest `keep` step directories plus whatever latest/best point to. */
function prune(root: string, keep: number): void {
  const pinned = new Set(['latest.json', 'best.json'].flatMap((p) => {
    try {
      return [JSON.parse(readFileSync(join(root, p), 'utf8')).dir as string];
    } catch {
      return [];
    }
  }));
  const dirs = readdirSync(root).filter((d) => /^step-\d+$/.test(d)).sort();
  for (const d of dirs.slice(0, Math.max(0, dirs.length - keep))) if (!pinned.has(d)) rmSync(join(root, d), { recursive: true, force: true });
}

/** The checkpoint directory `which` points to, or null when the run has none yet. */
export function checkpointDir(runDir: string, which: 'latest' | 'best' = 'latest'): string | null {
  const pointer = join(runDir, 'checkpoints', `${which}.json`);
  if (!existsSync(pointer)) return null;
  let dir: string;
  try {
    dir = JSON.parse(readFileSync(pointer, 'utf8')).dir;
  } catch {
    throw new VtokError(`checkpoint pointer is not valid JSON`, pointer);
  }
  const path = join(runDir, 'checkpoints', dir);
  if (!existsSync(join(path, 'state.json'))) throw new VtokError(`points to ${dir}, which is missing or incomplete`, pointer);
  return path;
}

export function loadCheckpoint(dir: string): CheckpointContent {
  const weights: CheckpointContent['weights'] = {};
  const optimizers: CheckpointContent['optimizers'] = {};
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.safetensors')) continue;
    const tensors = loadTensors(join(dir, f)).tensors;
    if (f.startsWith('optimizer.')) optimizers[f.slice(10, -12)] = tensors;
    else weights[f.slice(0, -12)] = tensors;
  }
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  } catch (e) {
    throw new VtokError(`state.json unreadable: ${(e as Error).message}`, dir);
  }
  return { step: Number(state.step), weights, optimizers, state };
}
