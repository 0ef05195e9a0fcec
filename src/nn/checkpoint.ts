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
  if (!existsSync(join(path, 'state.json')))
    throw new VtokError(`points to ${dir}, which is missing or incomplete`, pointer);
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

/**
 * The weights a run serves for inference, for every model kind (tokenizers, the generator's LM): its best checkpoint
 * (else the latest), with the EMA of the trainable weights where the run kept one (the training step stores it as
 * "ema.<name>" beside the optimizer state). Non-finite values are refused here, naming the file and the first
 * tensors that hold them: damaged or diverged weights would otherwise give black or constant output and exit 0.
 */
export function inferenceWeights(
  runDir: string,
  opts: { which?: 'best' | 'latest'; ema?: boolean } = {},
): { weights: Map<string, Tensor>; source: string } {
  const ck = checkpointDir(runDir, opts.which ?? 'best') ?? checkpointDir(runDir, 'latest');
  if (!ck) throw new VtokError('the run has no checkpoint yet', runDir);
  const c = loadCheckpoint(ck);
  const weights = c.weights.model;
  if (!weights) throw new VtokError('checkpoint has no model weights', ck);
  const fileOf = new Map<string, string>();
  if (opts.ema !== false) {
    for (const [k, t] of c.optimizers.model ?? []) {
      if (!k.startsWith('ema.') || !weights.has(k.slice(4))) continue;
      weights.set(k.slice(4), t);
      fileOf.set(k.slice(4), 'optimizer.model.safetensors');
    }
  }
  checkFinite(weights, (name) => join(ck, fileOf.get(name) ?? 'model.safetensors'));
  return { weights, source: ck };
}

/** Refuses float weights with NaN or infinite values, naming the first (file, index, value) and up to 3 more. */
export function checkFinite(weights: Map<string, Tensor>, fileOf: (name: string) => string): void {
  const bad: { name: string; i: number; v: number }[] = [];
  for (const [name, t] of weights) {
    if (t.dtype !== 'float32') continue;
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (Number.isFinite(d[i]!)) continue;
      bad.push({ name, i, v: d[i]! });
      break;
    }
  }
  if (!bad.length) return;
  const [first] = bad;
  const rest =
    bad
      .slice(1, 4)
      .map((b) => b.name)
      .join(', ') + (bad.length > 4 ? ` and ${bad.length - 4} more` : '');
  const more = bad.length > 1 ? `; so do ${rest}` : '';
  const what = `weight ${first!.name} holds ${first!.v} at index ${first!.i}${more}`;
  throw new VtokError(`${what} (damaged weights, or a training run that diverged)`, fileOf(first!.name));
}
