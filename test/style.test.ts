import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/** Biome's lineWidth (biome.json). The formatter leaves long strings and comments as they are; this test does not. */
const MAX_LINE = 120;

/**
 * Lines allowed to stay longer, keyed by "path:content" (path from the repository root), with the reason: only lines
 * that cannot be broken without changing what they mean (a URL, say). None so far.
 */
const ALLOWED_LONG_LINES = new Map<string, string>([]);

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('style', () => {
  it(`no line in src/, test/ or bench/ is longer than ${MAX_LINE} characters`, () => {
    const long: string[] = [];
    const allowedSeen = new Set<string>();
    for (const file of ['src', 'test', 'bench'].flatMap((d) => tsFiles(join(root, d)))) {
      const path = relative(root, file);
      readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .forEach((line, i) => {
          // characters counted as code points, not UTF-16 units or bytes
          const length = [...line].length;
          if (length <= MAX_LINE) return;
          const key = `${path}:${line}`;
          if (ALLOWED_LONG_LINES.has(key)) allowedSeen.add(key);
          else long.push(`${path}:${i + 1}: ${length} characters`);
        });
    }
    assert.deepEqual(
      long,
      [],
      `lines longer than ${MAX_LINE} characters (break the string or comment):\n${long.join('\n')}`,
    );
    const stale = [...ALLOWED_LONG_LINES.keys()].filter((k) => !allowedSeen.has(k));
    assert.deepEqual(stale, [], 'ALLOWED_LONG_LINES entries that no longer match a long line (remove them)');
  });
});
