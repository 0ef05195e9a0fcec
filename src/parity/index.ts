import type { Tensor } from '../engine/index.js';
import * as E from '../engine/index.js';
import { loadTensors } from '../nn/weights.js';
import { VtokError } from '../util/errors.js';

/**
 * Parity against the reference implementations: a golden safetensors file names its case and reference config in
 * `__metadata__`; the case's runner builds the model from that config, loads `param.*` by original names, runs
 * `input.*`, and returns vtok's outputs under the golden `output.*` names. Comparison is generic: floats by max
 * absolute error and error relative to the reference's largest magnitude; integer outputs must match exactly.
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

export function readGolden(path: string): GoldenFile {
  const { tensors, metadata } = loadTensors(path);
  const caseName = metadata.case;
  if (!caseName) throw new VtokError('not a golden file: __metadata__ has no "case"', path);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(metadata.config ?? '{}');
  } catch {
    throw new VtokError('__metadata__.config is not valid JSON', path);
  }
  return {
    path, case: caseName, config, metadata, tensors,
    params() {
      const p = new Map<string, Tensor>();
      for (const [k, t] of tensors) if (k.startsWith('param.')) p.set(k.slice(6), t);
      return p;
    },
    get(name) {
      const t = tensors.get(name);
      if (!t) throw new VtokError(`missing tensor "${name}"`, path);
      return t;
    },
  };
}

export interface OutputReport { name: string; shape: number[]; maxAbsError: number; maxRelError: number; exact?: boolean; mismatches?: number }
export interface ParityReport { file: string; case: string; pass: boolean; tolerance: number; outputs: OutputReport[] }

export function compare(name: string, got: Tensor, want: Tensor): OutputReport {
  if (got.shape.join() !== want.shape.join()) {
    throw new VtokError(`${name}: vtok produced shape [${got.shape}], the reference has [${want.shape}]`);
  }
  const a = E.toArray(got), b = E.toArray(want);
  if (want.dtype === 'int64' || want.dtype === 'int32') {
    let mismatches = 0;
    for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) mismatches++;
    return { name, shape: [...want.shape], maxAbsError: mismatches ? NaN : 0, maxRelError: mismatches ? NaN : 0, exact: mismatches === 0, mismatches };
  }
  let maxAbs = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { name, shape: [...want.shape], maxAbsError: maxAbs, maxRelError: maxAbs / Math.max(scale, 1e-12) };
}

/** Runs a golden file through its case runner and compares every output it produced. */
export function runParity(path: string, tolerance = 1e-4): ParityReport {
  const g = readGolden(path);
  const run = runners.get(g.case);
  if (!run) throw new VtokError(`no parity runner for case "${g.case}" (known: ${parityCases().join(', ') || 'none'})`, path);
  const outs = run(g);
  if (outs.size === 0) throw new VtokError(`case ${g.case} produced no outputs`, path);
  const outputs = [...outs].map(([name, t]) => compare(name, t, g.get(name)));
  const pass = outputs.every((o) => (o.exact === undefined ? o.maxRelError <= tolerance : o.exact));
  return { file: path, case: g.case, pass, tolerance, outputs };
}
