import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/**
 * The import graph of src/ reads as floors: a file imports only from its own floor or lower ones, so the engine
 * never depends on models, models never on training, and loading a model for inference pulls in no training code.
 * Several folders may share a floor when neither needs the other.
 */
const FLOORS: string[][] = [
  ['util'],
  ['io', 'codec'],
  ['engine'],
  ['onnx-import'],
  ['data', 'metrics'],
  ['nn'],
  ['losses', 'parity'],
  ['quantizers'],
  ['tokenizers'],
  ['corpus'],
  ['generation'],
  ['train'],
  ['classifier'],
  ['studies'],
  ['cli'],
  ['index.ts'],
];

/** Cycles allowed for now, each as its files joined by " ↔ " in sorted order, with the reason. */
const ALLOWED_CYCLES = new Map<string, string>([]);

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

interface Edge { to: string; typeOnly: boolean }

/**
 * Relative imports of a file (static, re-exports, side-effect and dynamic), as src-relative .ts paths. Type-only
 * ones (`import type`, `export type … from`) count for the floors but make no cycle: they vanish at run time.
 */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const re = /(^\s*(?:import|export)\s+(type\s+)?[^'";]*?\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.[^'"]+)['"]/gm;
  return [...text.matchAll(re)].map((m) => ({ to: relative(src, resolve(dirname(file), m[3])).replace(/\.js$/, '.ts'), typeOnly: !!m[2] }));
}

const floorOf = (path: string): number => {
  const top = path.split('/')[0];
  const i = FLOORS.findIndex((f) => f.includes(top));
  assert.ok(i >= 0, `src/${path}: folder "${top}" has no floor in test/layering.test.ts (add it to FLOORS)`);
  return i;
};

const graph = new Map(sourceFiles(src).map((f) => [relative(src, f), importsOf(f)]));

describe('layering', () => {
  it('every import points to a file that exists', () => {
    for (const [file, deps] of graph) for (const { to } of deps) assert.ok(graph.has(to), `src/${file} imports missing src/${to}`);
  });

  it('no import runs up a floor', () => {
    const up: string[] = [];
    for (const [file, deps] of graph) {
      for (const { to } of deps) if (floorOf(to) > floorOf(file)) up.push(`src/${file} → src/${to}`);
    }
    assert.deepEqual(up, [], `imports running up a floor (${FLOORS.map((f) => f.join('+')).join(' → ')}):\n${up.join('\n')}`);
  });

  it('no import cycle between files outside src/engine/ops', () => {
    // Tarjan's strongly connected components over the graph without the op files (ops register into the engine).
    const nodes = [...graph.keys()].filter((f) => !f.startsWith('engine/ops/'));
    const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
    const cycles: string[] = [];
    let next = 0;
    const visit = (v: string) => {
      index.set(v, next); low.set(v, next); next++;
      stack.push(v); on.add(v);
      for (const { to: w, typeOnly } of graph.get(v) ?? []) {
        if (typeOnly || !graph.has(w) || w.startsWith('engine/ops/')) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || (graph.get(v) ?? []).some((e) => e.to === v && !e.typeOnly)) cycles.push(scc.sort().join(' ↔ '));
      }
    };
    for (const v of nodes) if (!index.has(v)) visit(v);
    const unexpected = cycles.filter((c) => !ALLOWED_CYCLES.has(c));
    assert.deepEqual(unexpected, [], `import cycles:\n${unexpected.join('\n')}`);
  });

  it('loading a tokenizer for inference pulls in no training code', () => {
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const e of graph.get(f) ?? []) if (!e.typeOnly) visit(e.to);
    };
    visit('tokenizers/registry.ts');
    assert.ok(seen.has('nn/checkpoint.ts') && seen.size > 20, `${seen.size} files`);
    assert.deepEqual([...seen].filter((f) => /^(train|cli|studies|classifier)\//.test(f)), []);
  });

  it('the parser sees imports of every form', () => {
    // a guard on the regular expression above: if it stopped matching, the floor checks would pass vacuously
    const edges = [...graph.values()].reduce((n, d) => n + d.length, 0);
    assert.ok(edges > graph.size, `only ${edges} imports found in ${graph.size} files`);
    assert.ok(graph.get('cli/main.ts')!.length > 0);
    assert.ok(graph.get('engine/op.ts')!.some((e) => e.to === 'engine/dtype.ts' && e.typeOnly), 'import type seen as type-only');
    assert.ok(graph.get('engine/op.ts')!.some((e) => e.to === 'engine/tensor.ts' && !e.typeOnly), 'a value import seen as one');
  });
});
