import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inferenceWeights } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { VtokError } from '../util/errors.js';
import { createTokenizer } from './registry.js';
import type { Tokenizer } from './tokenizer.js';

/** The tokenizer a run directory's config.json describes, with its initial weights (no checkpoint read). */
export function buildTokenizer(path: string): { tokenizer: Tokenizer; module: Module } {
  if (!existsSync(path) || !statSync(path).isDirectory())
    throw new VtokError('not a run directory (expected config.json and checkpoints/)', path);
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
  return createTokenizer(kind, config.model.config);
}

/**
 * Loads a tokenizer from a run directory for inference: its best checkpoint (else the latest), using the EMA
 * weights when the run kept them; damaged (non-finite) weights are refused (nn/checkpoint.ts inferenceWeights).
 */
export function loadTokenizer(
  path: string,
  opts: { which?: 'best' | 'latest'; ema?: boolean } = {},
): { tokenizer: Tokenizer; module: Module; runDir: string } {
  const built = buildTokenizer(path);
  const { weights, source } = inferenceWeights(path, opts);
  built.module.loadStateDict(weights, { source });
  built.module.eval();
  return { ...built, runDir: path };
}
