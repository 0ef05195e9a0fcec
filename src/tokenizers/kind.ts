import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import type { Module } from '../nn/module.js';
import type { ParityRunner } from '../parity/index.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * What one tokenizer kind brings, all from its own folder (`src/tokenizers/<kind>/kind.ts`): how to build it from a
 * run's model config (the tokenizer it builds declares its modality), its training presets (typed by the kind),
 * options and loss, and its parity cases against the reference implementation. The list of kinds lives in one place,
 * src/tokenizers/registry.ts. The training loss is graph code over types of this floor (Tensor, Module), so a kind
 * needs nothing from train/: the generic tokenizer training task (src/train/tokenizer-task.ts) consumes a
 * `TokenizerModel` and adds the discriminator, evaluation and samples.
 */
export interface TokenizerKind {
  /** The key in run configs (`model.kind`) and on the command line (`vtok train <kind>`). */
  readonly name: string;
  /** Its name in help texts (e.g. "MAGVIT-v2"). */
  readonly title: string;
  create(modelConfig: Record<string, unknown>): { tokenizer: Tokenizer; module: Module };
  /** Training presets and loss; absent for kinds that only load reference weights. */
  readonly train?: TokenizerTrainer;
  /** Parity runners by golden-file case name. */
  readonly parity?: Record<string, ParityRunner>;
}

/** A CPU-scale training preset: data size, steps and rate, and the kind's own model options `M`. */
export interface Preset<M = unknown> {
  size: number;
  frames: number;
  batch: number;
  steps: number;
  lr: number;
  model: M;
}

/**
 * A training option of one kind (LARP's `--tokens`), which `vtok train` offers for that kind and refuses for the
 * others. Its key in a library call is the flag's name in camelCase without "no-" (`--no-prior` → `prior`, given
 * as false), as commander names it.
 */
export interface TrainerOption<M = unknown> {
  /** `--name <value>` (a value, read by `parse`) or `--no-name` (a switch that is on unless given). */
  readonly flag: string;
  /** The help text, without the kind's title (the CLI adds it). */
  readonly description: string;
  /** Parses and range-checks a value on the command line (options that take one). */
  readonly parse?: (value: string) => unknown;
  /** The preset's model options with this option given. */
  apply(model: M, value: unknown): M;
}

/** The key of an option in a library call and in commander's parsed options: `--no-prior` → `prior`. */
export function optionKey(o: TrainerOption): string {
  return o.flag
    .split(/[ =]/)[0]!
    .replace(/^--(no-)?/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The flag as a user types it: `--no-prior`, `--tokens`. */
export function optionFlag(o: TrainerOption): string {
  return o.flag.split(/[ =]/)[0]!;
}

export interface TokenizerTrainer<M = unknown> {
  presets: Record<string, Preset<M>>;
  /** The kind's own training options, applied to a preset's model options before `modelConfig`. */
  options: TrainerOption<M>[];
  /** The model config (a run's `model.config`) for a preset and a dataset's clip shape. */
  modelConfig(preset: Preset<M>, data: { size: number; frames: number; channels: number }): Record<string, unknown>;
  build(config: Record<string, unknown>, totalSteps: number): TokenizerModel;
}

/** A tokenizer being trained: its module and its own loss (reconstruction plus quantizer/prior terms). */
export interface TokenizerModel {
  tokenizer: Tokenizer;
  module: Module;
  /** Graph code: the training loss on a batch in [-1, 1] at a fed step number; recon is in [-1, 1]. */
  loss(input: Tensor, step: Tensor): { loss: Tensor; metrics: Record<string, Tensor>; recon: Tensor };
}

/**
 * The quantizer warm-up's blend α = min(step / steps, 1), computed in the graph from the fed step: how far the
 * decoder's input has gone from the continuous latent (0) to the code (1). No warm-up (steps = 0): undefined.
 */
export function quantizerWarmupBlend(step: Tensor, steps: number): Tensor | undefined {
  return steps > 0 ? E.minimum(E.div(step, steps), E.scalar(1)) : undefined;
}
