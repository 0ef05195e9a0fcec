import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/core.js';
import { loadTensors } from './weights-file.js';
import { VtokError } from '../util/errors.js';

/**
 * Checkpoints in a run directory: `checkpoints/step-NNNNNNN/` holds weights (safetensors per module), optimizer
 * state (safetensors per step function) and `state.json` (step, RNG states, loop counters), and the pointers
 * `checkpoints/latest.json` and `best.json` name the step directories. Reading them is here (loading a model needs
 * it); writing them is training's (./checkpoint-write.ts).
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
