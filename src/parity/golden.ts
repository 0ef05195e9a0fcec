import type { Tensor } from '../engine/core.js';
import { loadTensors } from '../nn/weights-file.js';
import { VtokError } from '../util/errors.js';
import { compare, type GoldenFile, parityCases, type ParityReport, parityRunner } from './index.js';

/** Golden files on disk: read one, and run it through its case runner (./index.ts). */
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
    path,
    case: caseName,
    config,
    metadata,
    tensors,
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

/** Runs a golden file through its case runner and compares every output it produced. */
export function runParity(path: string, tolerance = 1e-4): ParityReport {
  const g = readGolden(path);
  const run = parityRunner(g.case);
  if (!run)
    throw new VtokError(`no parity runner for case "${g.case}" (known: ${parityCases().join(', ') || 'none'})`, path);
  const outs = run(g);
  if (outs.size === 0) throw new VtokError(`case ${g.case} produced no outputs`, path);
  const outputs = [...outs].map(([name, t]) => compare(name, t, g.get(name)));
  const pass = outputs.every((o) => (o.exact === undefined ? o.maxRelError <= tolerance : o.exact));
  return { file: path, case: g.case, pass, tolerance, outputs };
}
