import type { Tensor } from '../engine/core.js';
import { loadTensors } from '../nn/weights-file.js';
import { VtokError } from '../util/errors.js';
import { canonicalJson } from '../util/json.js';
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

/**
 * Another model's config and weights to run a golden case's inputs through instead of the file's (e.g. a model
 * directory made by an import): the outputs must still match the reference's, which checks the import.
 */
export interface ParityModel {
  config: Record<string, unknown>;
  params: Map<string, Tensor>;
  /** Where it came from (named in errors and the report). */
  source: string;
}

/** Config keys both sides have whose values differ, as "key: golden … vs model …". */
function configDifferences(golden: Record<string, unknown>, model: Record<string, unknown>): string[] {
  return Object.keys(golden)
    .filter((k) => k in model && canonicalJson(golden[k]) !== canonicalJson(model[k]))
    .map((k) => `${k}: ${JSON.stringify(golden[k])} in the golden case, ${JSON.stringify(model[k])} in the model`);
}

/**
 * Runs a golden file through its case runner and compares every output it produced. With `model`, the case's
 * model is built from that config and weights (the case name is passed so the caller can refuse a model of another
 * kind); its config must agree with the golden one on every key both have.
 */
export function runParity(path: string, tolerance = 1e-4, model?: (caseName: string) => ParityModel): ParityReport {
  let g = readGolden(path);
  const run = parityRunner(g.case);
  if (!run)
    throw new VtokError(`no parity runner for case "${g.case}" (known: ${parityCases().join(', ') || 'none'})`, path);
  let source: string | undefined;
  if (model) {
    const m = model(g.case);
    source = m.source;
    const diff = configDifferences(g.config, m.config);
    if (diff.length)
      throw new VtokError(
        `the model's config is not the golden case's, so its outputs cannot match: ${diff.join('; ')}`,
        m.source,
      );
    g = { ...g, config: m.config, params: () => m.params };
  }
  const outs = run(g);
  if (outs.size === 0) throw new VtokError(`case ${g.case} produced no outputs`, path);
  const outputs = [...outs].map(([name, t]) => compare(name, t, g.get(name)));
  const pass = outputs.every((o) => (o.exact === undefined ? o.maxRelError <= tolerance : o.exact));
  return { file: path, case: g.case, pass, tolerance, outputs, ...(source ? { model: source } : {}) };
}
