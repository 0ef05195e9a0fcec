import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
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

interface Edge {
  to: string;
  typeOnly: boolean;
  sideEffect: boolean;
}

/** Every import of a file (static, re-exports, side-effect and dynamic): its specifier, type-only, side effect only. */
function specifiersOf(file: string): { spec: string; typeOnly: boolean; sideEffect: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const re = /(^\s*(?:import|export)\s+(type\s+)?[^'";]*?\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  return [...text.matchAll(re)].map((m) => ({
    spec: m[3]!,
    typeOnly: !!m[2],
    sideEffect: /^\s*import\s+$/.test(m[1]!),
  }));
}

/**
 * Relative imports of a file, as src-relative .ts paths. Type-only ones (`import type`, `export type … from`)
 * count for the floors but make no cycle: they vanish at run time.
 */
function importsOf(file: string): Edge[] {
  return specifiersOf(file)
    .filter((i) => i.spec.startsWith('.'))
    .map((i) => ({ ...i, to: relative(src, resolve(dirname(file), i.spec)).replace(/\.js$/, '.ts') }));
}

/** Packages a file imports (bare specifiers: Node builtins and npm packages), run-time imports only. */
const packagesOf = (file: string): string[] =>
  specifiersOf(file)
    .filter((i) => !i.spec.startsWith('.') && !i.typeOnly)
    .map((i) => i.spec);
const isNodeModule = (spec: string) =>
  spec.startsWith('node:') || builtinModules.includes(spec) || /^onnxruntime-node(\/|$)/.test(spec);

/** The files a file reaches through run-time imports (itself included). */
function reach(...from: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const e of graph.get(f) ?? []) if (!e.typeOnly) visit(e.to);
  };
  from.forEach(visit);
  return seen;
}

/**
 * What a browser build loads to run the tokenizers and the prefix LM: each kind's model and tokenizer, the
 * registry that builds one from a config and weight bytes (tokenizerFromBytes), the LM and its decoder, nn's
 * inference side and the safetensors parser.
 */
const INFERENCE_PATH = [
  'tokenizers/registry.ts',
  'tokenizers/magvit2/tokenizer.ts',
  'tokenizers/magvit2/model.ts',
  'tokenizers/larp/tokenizer.ts',
  'tokenizers/larp/model.ts',
  'generation/prefix-lm/model.ts',
  'generation/prefix-lm/decoder.ts',
  'nn/index.ts',
  'io/safetensors.ts',
];

/** npm packages the inference path may load: pure JavaScript, no Node builtins. */
const BROWSER_PACKAGES = new Set(['ml-matrix', 'onnx-proto']);

/** Files that install the engine's Node backend (entry points: the CLI, the Node library entry, worker threads). */
const isEntry = (f: string) => f === 'cli/main.ts' || f === 'index.ts' || /-worker\.ts$/.test(f);

const floorOf = (path: string): number => {
  const top = path.split('/')[0]!;
  const i = FLOORS.findIndex((f) => f.includes(top));
  assert.ok(i >= 0, `src/${path}: folder "${top}" has no floor in test/layering.test.ts (add it to FLOORS)`);
  return i;
};

const graph = new Map(sourceFiles(src).map((f) => [relative(src, f), importsOf(f)]));

/** nn's training side (re-exported by nn/train.ts), and what only it needs. */
const NN_TRAINING = new Set([
  'nn/train.ts',
  'nn/optim.ts',
  'nn/step.ts',
  'nn/chunks.ts',
  'nn/discriminator.ts',
  'nn/checkpoint-write.ts',
  'util/gc.ts',
]);

/**
 * The floors as README.md's "How the code is organised" lists them: one numbered line per floor, folders in backticks.
 */
function readmeFloors(): string[][] {
  const readme = readFileSync(resolve(src, '../README.md'), 'utf8');
  const section = readme.split(/^## How the code is organised$/m)[1]?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/^\d+\. (.*?):/gm)].map((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((f) => f[1]!));
}

describe('layering', () => {
  it('README.md describes the same floors as this test', () => {
    assert.deepEqual(readmeFloors(), FLOORS);
  });

  it('every import points to a file that exists', () => {
    for (const [file, deps] of graph)
      for (const { to } of deps) assert.ok(graph.has(to), `src/${file} imports missing src/${to}`);
  });

  it('no import runs up a floor', () => {
    const up: string[] = [];
    for (const [file, deps] of graph) {
      for (const { to } of deps) if (floorOf(to) > floorOf(file)) up.push(`src/${file} → src/${to}`);
    }
    assert.deepEqual(
      up,
      [],
      `imports running up a floor (${FLOORS.map((f) => f.join('+')).join(' → ')}):\n${up.join('\n')}`,
    );
  });

  it('no import cycle between files outside src/engine/ops', () => {
    // Tarjan's strongly connected components over the graph without the op files (ops register into the engine).
    const nodes = [...graph.keys()].filter((f) => !f.startsWith('engine/ops/'));
    const index = new Map<string, number>(),
      low = new Map<string, number>(),
      stack: string[] = [],
      on = new Set<string>();
    const cycles: string[] = [];
    let next = 0;
    const visit = (v: string) => {
      index.set(v, next);
      low.set(v, next);
      next++;
      stack.push(v);
      on.add(v);
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
        if (scc.length > 1 || (graph.get(v) ?? []).some((e) => e.to === v && !e.typeOnly))
          cycles.push(scc.sort().join(' ↔ '));
      }
    };
    for (const v of nodes) if (!index.has(v)) visit(v);
    const unexpected = cycles.filter((c) => !ALLOWED_CYCLES.has(c));
    assert.deepEqual(unexpected, [], `import cycles:\n${unexpected.join('\n')}`);
  });

  it('loading a tokenizer for inference pulls in no training code', () => {
    const seen = reach('tokenizers/load.ts');
    assert.ok(
      seen.has('nn/checkpoint.ts') && seen.has('tokenizers/registry.ts') && seen.size > 20,
      `${seen.size} files`,
    );
    assert.deepEqual(
      [...seen].filter((f) => /^(train|cli|studies|classifier)\//.test(f) || NN_TRAINING.has(f)),
      [],
    );
  });

  it('nn/index.ts (inference) reaches none of nn/train.ts (training)', () => {
    const inference = reach('nn/index.ts');
    assert.ok(inference.has('nn/compiled.ts') && inference.has('nn/weights.ts'));
    assert.deepEqual(
      [...inference].filter((f) => NN_TRAINING.has(f)),
      [],
    );
    const training = reach('nn/train.ts');
    assert.ok(
      [...NN_TRAINING].every((f) => training.has(f)),
      'the training files are reached from nn/train.ts',
    );
  });

  it('the inference path of both tokenizers and the prefix LM reaches no Node module', () => {
    for (const f of INFERENCE_PATH) assert.ok(graph.has(f), `src/${f} is missing (renamed? update INFERENCE_PATH)`);
    const files = reach(...INFERENCE_PATH);
    assert.ok(
      files.has('tokenizers/magvit2/kind.ts') && files.has('tokenizers/larp/kind.ts') && files.has('engine/core.ts'),
      'the walk reaches both kinds and the engine',
    );
    const node = [...files].flatMap((f) =>
      packagesOf(join(src, f))
        .filter(isNodeModule)
        .map((p) => `src/${f}: ${p}`),
    );
    assert.deepEqual(node, [], 'Node modules on the inference path');
    const packages = new Set([...files].flatMap((f) => packagesOf(join(src, f))));
    assert.deepEqual(
      [...packages].filter((p) => !BROWSER_PACKAGES.has(p)),
      [],
      'packages not known to run in a browser',
    );
    // and the scan sees Node imports where they are
    assert.ok(
      reach('tokenizers/load.ts').has('nn/weights-file.ts') &&
        packagesOf(join(src, 'io/safetensors-file.ts')).some(isNodeModule),
    );
  });

  it('library code imports the engine core; only entry points install the Node backend', () => {
    const nodeEngine = new Set(['engine/index.ts', 'engine/backends/node.ts']);
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      if (file.startsWith('engine/')) continue;
      for (const e of deps) {
        if (!nodeEngine.has(e.to)) continue;
        // an entry installs it by a side-effect import (index.ts re-exports it as E)
        if (!isEntry(file) || !(e.sideEffect || file === 'index.ts')) bad.push(`src/${file} → src/${e.to}`);
      }
    }
    assert.deepEqual(
      bad,
      [],
      "import engine/core.js instead (entry points: import '…/engine/index.js' for its side effect)",
    );
    assert.ok(
      (graph.get('cli/main.ts') ?? []).some((e) => e.to === 'engine/index.ts' && e.sideEffect),
      'the CLI installs the backend',
    );
  });

  it('the parser sees imports of every form', () => {
    // a guard on the regular expression above: if it stopped matching, the floor checks would pass vacuously
    const edges = [...graph.values()].reduce((n, d) => n + d.length, 0);
    assert.ok(edges > graph.size, `only ${edges} imports found in ${graph.size} files`);
    assert.ok(graph.get('cli/main.ts')!.length > 0);
    assert.ok(
      graph.get('engine/op.ts')!.some((e) => e.to === 'engine/dtype.ts' && e.typeOnly),
      'import type seen as type-only',
    );
    assert.ok(
      graph.get('engine/op.ts')!.some((e) => e.to === 'engine/tensor.ts' && !e.typeOnly),
      'a value import seen as one',
    );
  });
});
