import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The engine core runs in a browser: no file of src/engine outside backends/node* imports a Node module, and
 * nothing the core entry (src/engine/core.ts) reaches through its imports does either.
 */
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const ENGINE = join(SRC, 'engine');
const NODE_BUILTINS = new Set(builtinModules);

/** Module specifiers of the static imports and re-exports in a TypeScript file (type-only imports excluded). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)) out.push(m[1] ?? m[2]);
  return out;
}

const isNodeModule = (spec: string) => spec.startsWith('node:') || NODE_BUILTINS.has(spec) || spec === 'onnxruntime-node' || spec.startsWith('onnxruntime-node/');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('engine core', () => {
  it('no engine file outside backends/node* imports a Node module', () => {
    const files = walk(ENGINE).filter((f) => !/backends[/\\]node[^/\\]*\.ts$/.test(f));
    assert.ok(files.length > 20, `${files.length} engine files found`);
    const bad = files.flatMap((f) => imports(f).filter(isNodeModule).map((s) => `${relative(SRC, f)}: ${s}`));
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
