import type { writeSync } from 'node:fs';
import type { SafeDType, SafeTensor } from '../io/safetensors.js';
import type { TorchCheckpoint } from '../io/torch-checkpoint.js';
import { buildShapesOnly } from '../nn/init.js';
import { VtokError } from '../util/errors.js';
import { createTokenizer } from './registry.js';

/**
 * What a release importer works with and returns (the import itself, the same for every release, is ./import.ts):
 * the release's files as given, the options, and the plan of the model directory to write; plus the check every
 * importer makes, a config against the weights (expectedWeights, matchWeights).
 */

/** The release's files as given: a file, or a folder (a Hugging Face snapshot, a download). */
export interface ImportSource {
  /** Absolute path of what was given. */
  readonly path: string;
  readonly isFolder: boolean;
  /** The folder's files (top level, sorted) or the one file given, as absolute paths. */
  readonly files: readonly string[];
  /** A file of the folder by its name, or undefined. */
  file(name: string): string | undefined;
  /** The folder's config.json, parsed; undefined when there is none. */
  configJson(): Record<string, unknown> | undefined;
  /** The PyTorch checkpoint given (the file, or the folder's one .ckpt/.pt/.pth/.bin), opened on first use. */
  checkpoint(): TorchCheckpoint | undefined;
  /** `--config` (YAML or JSON), parsed. */
  readonly config?: { path: string; content: unknown };
  /** Reads another config file (e.g. the YAML beside a checkpoint) as --config is read. */
  readConfig(path: string): { path: string; content: unknown };
}

export interface ImportOptions {
  /** The model directory to write; absent or an empty folder. */
  out: string;
  /** A config file for releases whose weights do not carry one (Open-MAGVIT2's YAML). */
  config?: string;
  /** Store float weights as float16 (half the size; computed in float32 all the same). */
  half?: boolean;
  /** Open-MAGVIT2: its EMA weights (default) or the raw ones. */
  weights?: 'ema' | 'raw';
  /** Open-MAGVIT2: the LFQ bit order the checkpoint was trained with (default: detected, else lsb). */
  lfqOrder?: 'lsb' | 'msb';
  /** Where the files came from when not from the local path, e.g. a hub repository and revision (`hf:` names). */
  origin?: { repository: string; revision?: string };
  /** No progress bars. */
  quiet?: boolean;
  /** Stands in for fs.writeSync while writing the weights (tests simulate a full disk). */
  writeSync?: typeof writeSync;
}

/** A weight as a release holds it, under its vtok name: shape and dtype known, values read on demand. */
export interface WeightSource {
  shape: readonly number[];
  dtype: SafeDType;
  read(): SafeTensor;
}

/** A weight of the imported model: its name and shape in vtok, the dtype it is written in, where it is read from. */
export interface ImportTensor {
  name: string;
  shape: number[];
  /** F32 for float weights (F16 with --half), else the model's integer dtype. */
  dtype: SafeDType;
  read(): SafeTensor;
}

/** What an importer found: the model directory's config, its weights and where they come from. */
export interface ImportPlan {
  /** Human name of the release ("Open-MAGVIT2 video tokenizer"). */
  release: string;
  /** SPDX identifier of the release's licence. */
  licence: string;
  /** config.json of the model directory (model.kind/config, data); `imported` is added by importModel. */
  config: Record<string, unknown>;
  tensors: ImportTensor[];
  /** The input files the model is made from, hashed into the provenance record. */
  files: { path: string; role: string }[];
  /** Release-specific provenance (which weights, bit order, what was dropped). */
  provenance?: Record<string, unknown>;
  /** Closes what the plan's readers hold open (called once the import ends, written or not). */
  close?(): void;
}

export interface ReleaseImporter {
  /** Short name ("open-magvit2"). */
  name: string;
  /** What it reads, for the message when nothing recognises an input. */
  accepts: string;
  detect(src: ImportSource): boolean;
  /**
   * Checks the release against the model its config describes (every problem at once: missing, unexpected and
   * mis-shaped weights) and plans the import; `note` tells the user what they should know (e.g. a prior dropped).
   */
  plan(src: ImportSource, opts: ImportOptions, note: (message: string) => void): ImportPlan;
}

/** SafeDType of an engine dtype, for weights written as they are. */
const SAFE_OF: Record<string, SafeDType> = { float32: 'F32', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };

/**
 * The weights a tokenizer of `kind` built from `config` has, by name (shape and dtype; no values: buildShapesOnly),
 * in the dtype they are written in (F16 for float weights with `half`).
 */
export function expectedWeights(
  kind: string,
  config: Record<string, unknown>,
  half = false,
): Map<string, { shape: number[]; dtype: SafeDType }> {
  const { module } = buildShapesOnly(() => createTokenizer(kind, config));
  const out = new Map<string, { shape: number[]; dtype: SafeDType }>();
  for (const [name, p] of module.namedParams()) {
    const dtype = SAFE_OF[p.value.dtype];
    if (!dtype) throw new VtokError(`weight ${name} has dtype ${p.value.dtype}, which an import does not write`);
    out.set(name, { shape: [...p.value.shape], dtype: dtype === 'F32' && half ? 'F16' : dtype });
  }
  return out;
}

const listed = (names: string[]): string =>
  names.length > 10 ? `${names.slice(0, 10).join(', ')}, … (${names.length - 10} more)` : names.join(', ');

/**
 * The plan's tensors: every weight the model expects, read from `available` by name (after the release's own name
 * mapping). A config that does not fit the weights is refused with every missing, unexpected and mis-shaped name at
 * once; `what` says what the config was (e.g. "the config (video tokenizer, from x.yaml)").
 */
export function matchWeights(
  expected: Map<string, { shape: number[]; dtype: SafeDType }>,
  available: Map<string, WeightSource>,
  what: string,
  file: string,
): ImportTensor[] {
  const missing = [...expected.keys()].filter((k) => !available.has(k));
  const unexpected = [...available.keys()].filter((k) => !expected.has(k));
  const misshaped: string[] = [];
  const isFloat = (d: SafeDType) => d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
  for (const [k, want] of expected) {
    const got = available.get(k);
    if (!got) continue;
    if (got.shape.join() !== want.shape.join())
      misshaped.push(`${k} (the weights have [${got.shape}], the config expects [${want.shape}])`);
    else if (isFloat(got.dtype) !== isFloat(want.dtype))
      misshaped.push(`${k} (the weights are ${got.dtype}, the model expects ${want.dtype})`);
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`${missing.length} missing: ${listed(missing)}`);
  if (unexpected.length) problems.push(`${unexpected.length} unexpected: ${listed(unexpected)}`);
  if (misshaped.length) problems.push(`${misshaped.length} mis-shaped: ${listed(misshaped)}`);
  if (problems.length) throw new VtokError(`${what} does not fit the weights: ${problems.join('; ')}`, file);
  return [...expected].map(([name, want]) => ({
    name,
    shape: want.shape,
    dtype: want.dtype,
    read: () => available.get(name)!.read(),
  }));
}
