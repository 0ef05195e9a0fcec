import { buildForLoading } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import { tensorsFromBytes } from '../nn/weights.js';
import { registerParity } from '../parity/index.js';
import { VtokError } from '../util/errors.js';
import {
  optionFlag,
  optionKey,
  type Preset,
  type TokenizerKind,
  type TokenizerTrainer,
  type TrainerOption,
} from './kind.js';
import { larpKind } from './larp/kind.js';
import { magvit2Kind } from './magvit2/kind.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * The one place tokenizer kinds are registered. A kind is one folder, src/tokenizers/<kind>/, whose kind.ts
 * exports a TokenizerKind (model builder, modality, training presets, options and loss, parity cases); adding a kind
 * is that folder plus one line in KINDS below. Everything that dispatches on a kind name (loading a run, `vtok train`,
 * `vtok parity`) looks it up here. Training glue that needs train/ (discriminator, samples, the loop) stays in
 * train/ and consumes the kind's TokenizerModel, so this floor imports nothing from train/. Nor does this file touch
 * files: a browser builds a tokenizer from a config and fetched weights (tokenizerFromBytes); loading a run
 * directory from disk is ./load.ts.
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
  if (!k.train)
    throw new VtokError(
      `cannot train "${name}" (trainable: ${[...kinds.values()]
        .filter((x) => x.train)
        .map((x) => x.name)
        .join(', ')})`,
    );
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
  if (!preset)
    throw new VtokError(`unknown preset "${name}" for ${kind} (known: ${Object.keys(trainer.presets).join(', ')})`);
  let model = preset.model;
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const own = trainer.options.find((o) => optionKey(o) === key);
    if (own) {
      model = own.apply(model, value);
      continue;
    }
    const all = trainerOptions(),
      other = all.find((o) => o.key === key);
    if (!other) throw new VtokError(`unknown training option "${key}" (known: ${all.map((o) => o.key).join(', ')})`);
    const owners = other.kinds.map((k) => k.name).join(', ');
    throw new VtokError(`${optionFlag(other.option)} applies to ${owners} only, not ${kind}`);
  }
  return { ...preset, model };
}

export function createTokenizer(
  name: string,
  config: Record<string, unknown>,
): { tokenizer: Tokenizer; module: Module } {
  return tokenizerKind(name).create(config);
}

/**
 * A tokenizer for inference from its kind, its model config (a run's `model.config`) and the safetensors bytes of
 * its module's weights (a packed run's `model.safetensors`), in eval mode. Needs no file access, and no engine run
 * (buildForLoading): every weight the model's initialisation would set comes from the bytes (strict loading).
 */
export function tokenizerFromBytes(
  kind: string,
  config: Record<string, unknown>,
  weights: Uint8Array,
): { tokenizer: Tokenizer; module: Module } {
  const built = buildForLoading(() => createTokenizer(kind, config));
  built.module.loadStateDict(tensorsFromBytes(weights).tensors, { source: `${kind} weights` });
  built.module.eval();
  return built;
}
