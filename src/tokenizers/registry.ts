import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointDir, loadCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { registerParity } from '../parity/index.js';
import { VtokError } from '../util/errors.js';
import { optionFlag, optionKey, type Preset, type TokenizerKind, type TokenizerTrainer, type TrainerOption } from
  './kind.js';
import { larpKind } from './larp/kind.js';
import { magvit2Kind } from './magvit2/kind.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * The one place tokenizer kinds are registered. A kind is one folder, src/tokenizers/<kind>/, whose kind.ts
 * exports a TokenizerKind (model builder, modality, training presets, options and loss, parity cases); adding a kind
 * is that folder plus one line in KINDS below. Everything that dispatches on a kind name (loading a run, `vtok train`,
 * `vtok parity`) looks it up here. Training glue that needs train/ (discriminator, samples, the loop) stays in
 * train/ and consumes the kind's TokenizerModel, so this floor imports nothing from train/.
 */
const KINDS: TokenizerKind[] = [magvit2Kind, larpKind];

const kinds = new Map<string, TokenizerKind>();

/** Adds a kind (and its parity cases) under its name; a later registration of the same name replaces it. */
export function registerTokenizerKind(k: TokenizerKind): void {
  kinds.set(k.name, k);
  for (const [caseName, run] of Object.entries(k.parity ?? {})) registerParity(caseName, run);
}

for (const k of KINDS) registerTokenizerKind(k);

export function tokenizerKinds(): string[] {
  return [...kinds.keys()];
}

export function tokenizerKind(name: string): TokenizerKind {
  const k = kinds.get(name);
  if (!k) throw new VtokError(`unknown tokenizer kind "${name}" (known: ${tokenizerKinds().join(', ')})`);
  return k;
}

/** A kind's training presets and loss, for `vtok train <kind>`. */
export function trainerFor(name: string): TokenizerTrainer {
  const k = tokenizerKind(name);
  if (!k.train) throw new VtokError(`cannot train "${name}" (trainable: ${[...kinds.values()].filter((x) => x.train).map((x) => x.name).join(', ')})`);
  return k.train;
}

/**
 * Every trainable kind's own training options, one entry per option key with the kinds that declare it (a key two
 * kinds share is parsed the first kind's way), in registration order: what `vtok train` offers.
 */
export function trainerOptions(): { key: string; option: TrainerOption; kinds: TokenizerKind[] }[] {
  const byKey = new Map<string, { key: string; option: TrainerOption; kinds: TokenizerKind[] }>();
  for (const k of kinds.values()) {
    for (const option of k.train?.options ?? []) {
      const key = optionKey(option);
      const entry = byKey.get(key);
      if (entry) entry.kinds.push(k);
      else byKey.set(key, { key, option, kinds: [k] });
    }
  }
  return [...byKey.values()];
}

/**
 * A kind's preset by name with the kind's own options applied (`{ tokens: 64 }`, `{ prior: false }`; undefined
 * values are not given). An option this kind does not declare is refused by name rather than silently ignored.
 */
export function trainingPreset(kind: string, name: string, options: Record<string, unknown> = {}): Preset {
  const trainer = trainerFor(kind);
  const preset = trainer.presets[name];
  if (!preset) throw new VtokError(`unknown preset "${name}" for ${kind} (known: ${Object.keys(trainer.presets).join(', ')})`);
  let model = preset.model;
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const own = trainer.options.find((o) => optionKey(o) === key);
    if (own) {
      model = own.apply(model, value);
      continue;
    }
    const all = trainerOptions(), other = all.find((o) => o.key === key);
    if (!other) throw new VtokError(`unknown training option "${key}" (known: ${all.map((o) => o.key).join(', ')})`);
    const owners = other.kinds.map((k) => k.name).join(', ');
    throw new VtokError(`${optionFlag(other.option)} applies to ${owners} only, not ${kind}`);
  }
  return { ...preset, model };
}

export function createTokenizer(name: string, config: Record<string, unknown>): { tokenizer: Tokenizer; module: Module } {
  return tokenizerKind(name).create(config);
}

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
