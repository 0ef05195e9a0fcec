import type { Tensor } from '../engine/core.js';
import * as E from '../engine/core.js';
import { VtokError } from '../util/errors.js';

/**
 * Parity against the reference implementations: a golden safetensors file names its case and reference config in
 * `__metadata__`; the case's runner builds the model from that config, loads `param.*` by original names, runs
 * `input.*`, and returns vtok's outputs under the golden `output.*` names. Comparison is generic: floats by max
 * absolute error and error relative to the reference's largest magnitude; integer outputs must match exactly.
 * Reading golden files from disk is ./golden.ts, so that registering runners (the tokenizer registry does) needs
 * no file access.
 */
export interface GoldenFile {
  path: string;
  case: string;
  config: Record<string, unknown>;
  metadata: Record<string, string>;
  /** Every tensor, full names (param.*, input.*, output.*, inter.*). */
  tensors: Map<string, Tensor>;
  /** `param.*` tensors with the prefix removed: the reference state_dict. */
  params(): Map<string, Tensor>;
  get(name: string): Tensor;
}

/** A case runner: vtok's value for each golden output it reproduces, keyed by the golden name ("output.recon"). */
export type ParityRunner = (g: GoldenFile) => Map<string, Tensor>;

const runners = new Map<string, ParityRunner>();

export function registerParity(caseName: string, run: ParityRunner): void {
  runners.set(caseName, run);
}

export function parityCases(): string[] {
  return [...runners.keys()];
}

/** The runner registered for a golden case, if any. */
export function parityRunner(caseName: string): ParityRunner | undefined {
  return runners.get(caseName);
}

export interface OutputReport {
  name: string;
  shape: number[];
  maxAbsError: number;
  maxRelError: number;
  exact?: boolean;
  mismatches?: number;
}
export interface ParityReport {
  file: string;
  case: string;
  pass: boolean;
  tolerance: number;
  outputs: OutputReport[];
  /** The model whose weights ran the case's inputs, when not the file's own. */
  model?: string;
}

export function compare(name: string, got: Tensor, want: Tensor): OutputReport {
  if (got.shape.join() !== want.shape.join()) {
    throw new VtokError(`${name}: vtok produced shape [${got.shape}], the reference has [${want.shape}]`);
  }
  const a = E.toArray(got),
    b = E.toArray(want);
  if (want.dtype === 'int64' || want.dtype === 'int32') {
    let mismatches = 0;
    for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) mismatches++;
    return {
      name,
      shape: [...want.shape],
      maxAbsError: mismatches ? NaN : 0,
      maxRelError: mismatches ? NaN : 0,
      exact: mismatches === 0,
      mismatches,
    };
  }
  let maxAbs = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { name, shape: [...want.shape], maxAbsError: maxAbs, maxRelError: maxAbs / Math.max(scale, 1e-12) };
}
