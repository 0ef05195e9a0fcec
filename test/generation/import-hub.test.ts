import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import '../../src/engine/index.js';
import { importAny } from '../../src/generation/import.js';
import { vtok } from '../cli/run-vtok.js';
import { tempDir } from '../io/fixtures.js';
import { writeLarpFolder } from '../tokenizers/release-fixtures.js';

/**
 * `vtok import hf:owner/name`: the repository is fetched through the hub client into its cache and imported with
 * the repository and resolved commit as provenance; offline, the message names the files and where to put them.
 */
const dir = tempDir('import-hub');
const COMMIT = 'c0ffee'.padEnd(40, '0');

/** A stand-in hub serving one repository (acme/larp) from a folder: listing and resolve, nothing else. */
async function serveRepo(folder: string): Promise<{ endpoint: string; hits: string[]; close(): void }> {
  const files = new Map(readdirSync(folder).map((n) => [n, readFileSync(join(folder, n))]));
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits.push(path);
    if (path === '/api/models/acme/larp/revision/main') {
      const siblings = [...files].map(([rfilename, b]) => ({
        rfilename,
        size: b.length,
        lfs: { sha256: createHash('sha256').update(b).digest('hex'), size: b.length },
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sha: COMMIT, siblings }));
      return;
    }
    const m = /^\/acme\/larp\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(path);
    const body = m && m[1] === COMMIT ? files.get(m[2]!) : undefined;
    if (!body) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('hf: names are downloaded, then imported with the repository and commit recorded', async () => {
  const hub = await serveRepo(writeLarpFolder(join(dir, 'release')));
  try {
    const out = join(dir, 'larp');
    const hubOpts = { endpoint: hub.endpoint, cacheDir: join(dir, 'cache') };
    const r = await importAny('hf:acme/larp', { out, quiet: true, hub: hubOpts });
    assert.equal(r.licence, 'MIT');
    assert.equal(r.hub?.revision, COMMIT);
    const imported = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).imported;
    assert.deepEqual(imported.source, { repository: 'acme/larp', revision: COMMIT });
    assert.deepEqual(imported.files.map((f: { name: string }) => f.name).sort(), ['config.json', 'model.safetensors']);
    // a second import of the same name downloads nothing again
    const before = hub.hits.filter((h) => h.includes('/resolve/')).length;
    await importAny('hf:acme/larp', { out: join(dir, 'larp2'), quiet: true, hub: hubOpts });
    assert.equal(hub.hits.filter((h) => h.includes('/resolve/')).length, before);
    // --file names a file the repository does not have: refused before any download
    await assert.rejects(
      importAny('hf:acme/larp', { out: join(dir, 'larp3'), file: 'x.ckpt', quiet: true, hub: hubOpts }),
      /x\.ckpt/,
    );
    assert.ok(!existsSync(join(dir, 'larp3')));
  } finally {
    hub.close();
  }
});

test('offline: one message naming where the files go, non-zero exit, nothing written', async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((r) => closed.close(() => r()));
  process.env.HF_ENDPOINT = endpoint;
  process.env.VTOK_HUB_CACHE = join(dir, 'offline-cache');
  const out = join(dir, 'never');
  const r = await vtok('import', 'hf:hywang66/LARP-L-long-tokenizer', '--out', out);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /hywang66\/LARP-L-long-tokenizer/);
  assert.match(r.stderr, /offline-cache/);
  assert.match(r.stderr, /vtok import <folder>/);
  assert.ok(!existsSync(out));
});
