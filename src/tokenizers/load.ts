import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointDir, loadCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { VtokError } from '../util/errors.js';
import { createTokenizer } from './registry.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * Loads a tokenizer from a run directory (its best checkpoint, else the latest), using the EMA weights when the
 * run kept them.
 */
export function loadTokenizer(path: string, opts: { which?: 'best' | 'latest'; ema?: boolean } = {}): { tokenizer: Tokenizer; module: Module; runDir: string } {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new VtokError('not a run directory (expected config.json and checkpoints/)', path);
  const configPath = join(path, 'config.json');
  if (!existsSync(configPath)) throw new VtokError('no config.json: not a vtok run directory', path);
  let config: { model?: { kind?: string; config?: Record<string, unknown> } };
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch {
    throw new VtokError('config.json is not valid JSON', configPath);
  }
  const kind = config.model?.kind;
  if (!kind || !config.model?.config) throw new VtokError('config.json has no model.kind / model.config', configPath);
  const built = createTokenizer(kind, config.model.config);
  const dir = checkpointDir(path, opts.which ?? 'best') ?? checkpointDir(path, 'latest');
  if (!dir) throw new VtokError('the run has no checkpoint yet', path);
  const c = loadCheckpoint(dir);
  const weights = c.weights.model;
  if (!weights) throw new VtokError('checkpoint has no model weights', dir);
  // The training step keeps the EMA of the trainable weights beside the optimizer state ("ema.<name>").
  const ema = c.optimizers.model;
  if (opts.ema !== false && ema) {
    for (const [k, t] of ema) if (k.startsWith('ema.') && weights.has(k.slice(4))) weights.set(k.slice(4), t);
  }
  built.module.loadStateDict(weights, { source: dir });
  built.module.eval();
  return { ...built, runDir: path };
}
