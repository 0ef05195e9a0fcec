import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The engine core runs in a browser: no file of src/engine outside backends/node* imports a Node module, and
 * nothing the core entry (src/engine/core.ts) reaches through its imports does either. Above it, the inference path
 * of the tokenizers and the prefix LM runs on a stub backend with Node modules refused (test/layering.test.ts
 * checks the same statically), and every test that reaches the engine installs the Node backend itself.
 */
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const TEST = fileURLToPath(new URL('../../../test/', import.meta.url));
const ENGINE = join(SRC, 'engine');
const NODE_BUILTINS = new Set(builtinModules);

/** Module specifiers of the static imports and re-exports in a TypeScript file (type-only imports excluded). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm))
    out.push(m[1] ?? m[2]!);
  return out;
}

const isNodeModule = (spec: string) =>
  spec.startsWith('node:') ||
  NODE_BUILTINS.has(spec) ||
  spec === 'onnxruntime-node' ||
  spec.startsWith('onnxruntime-node/');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('engine core', () => {
  it('no engine file outside backends/node* imports a Node module', () => {
    const files = walk(ENGINE).filter((f) => !/backends[/\\]node[^/\\]*\.ts$/.test(f));
    assert.ok(files.length > 20, `${files.length} engine files found`);
    const bad = files.flatMap((f) =>
      imports(f)
        .filter(isNodeModule)
        .map((s) => `${relative(SRC, f)}: ${s}`),
    );
    assert.deepEqual(bad, []);
  });

  it('the core entry reaches no Node module through its imports', () => {
    const seen = new Set<string>();
    const bad: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of imports(file)) {
        if (isNodeModule(spec)) bad.push(`${relative(SRC, file)}: ${spec}`);
        else if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      }
    };
    visit(join(ENGINE, 'core.ts'));
    assert.ok(seen.size > 20, `${seen.size} files reached`);
    assert.deepEqual(bad, []);
    // and the scan does see Node imports where they are
    assert.ok(imports(join(ENGINE, 'backends', 'node.ts')).some(isNodeModule));
  });
});

describe('the inference path without Node', () => {
  it('builds both tokenizers from config + bytes and encodes/decodes on a stub backend, no Node module loaded', () => {
    const child = fileURLToPath(new URL('./inference-child.js', import.meta.url));
    const out = JSON.parse(execFileSync(process.execPath, [child], { encoding: 'utf8' }));
    assert.equal(out.backend, 'stub');
    assert.deepEqual(out.results, {
      magvit2: { ids: { dtype: 'int64', shape: [1, 2, 2, 2] }, recon: [1, 3, 5, 8, 8] },
      larp: { ids: { dtype: 'int64', shape: [1, 32] }, recon: [1, 3, 8, 32, 32] },
      lm: [1, 8, 32],
    });
    // every program went through the stub: each tokenizer's encode and decode, and the LM
    assert.deepEqual([...out.sessions].sort(), [
      'larp_decode',
      'larp_encode',
      'magvit2_decode',
      'magvit2_encode',
      'prefix_lm',
    ]);
    assert.match(out.blocked, /blocked: src\/engine\/backends\/node\.js imports node:/);
  });
});

describe('test entry points', () => {
  it('every test file that reaches the engine core installs the Node backend (src/engine/index.ts)', () => {
    const reach = (file: string, seen = new Set<string>()): Set<string> => {
      if (seen.has(file)) return seen;
      seen.add(file);
      for (const spec of imports(file))
        if (spec.startsWith('.')) reach(resolve(dirname(file), spec.replace(/\.js$/, '.ts')), seen);
      return seen;
    };
    const tests = walk(TEST).filter((f) => f.endsWith('.test.ts'));
    const core = join(ENGINE, 'core.ts'),
      node = join(ENGINE, 'index.ts');
    const missing = tests.filter((f) => {
      const r = reach(f);
      return r.has(core) && !r.has(node);
    });
    assert.ok(tests.length > 50, `${tests.length} test files`);
    assert.deepEqual(
      missing.map((f) => relative(TEST, f)),
      [],
      "add import '…/src/engine/index.js' (the modules under test import the backend-free core)",
    );
  });
});
