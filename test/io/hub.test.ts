import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hubFileUrl, hubSnapshot, isHubSpec, parseHubSpec } from '../../src/io/hub.js';

const dir = mkdtempSync(join(tmpdir(), 'vtok-hub-'));
// the machine's own Hugging Face settings must not reach the tests
for (const k of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'VTOK_HUB_CACHE']) {
  delete process.env[k];
}
process.env.HF_TOKEN_PATH = join(dir, 'no-token-file');

const COMMIT = 'c0ffee'.padEnd(40, '0');
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitBlob = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

// a stand-in repository: an LFS weight file large enough to arrive in many chunks, small text files, and files
// the default selection leaves out
const weights = new Uint8Array(600_000).map((_, i) => (i * 7919 + (i >> 8)) & 255);
const FILES: Record<string, { bytes: Uint8Array; lfs?: boolean }> = {
  'config.json': { bytes: Buffer.from('{"hidden_size": 8}\n') },
  'README.md': { bytes: Buffer.from('---\nlicense: mit\n---\n# tiny\n') },
  'sub/params.yaml': { bytes: Buffer.from('model:\n  init_args: {}\n') },
  'model.safetensors': { bytes: weights, lfs: true },
  '.gitattributes': { bytes: Buffer.from('*.safetensors filter=lfs\n') },
  'train.py': { bytes: Buffer.from('print(1)\n') },
};
const SELECTED = ['README.md', 'config.json', 'model.safetensors', 'sub/params.yaml'];

interface Hit {
  path: string;
  range?: string;
  auth?: string;
}

/** The hub's behaviour for one test: what it logs, and how it misbehaves. */
interface Hub {
  hits: Hit[];
  /** File paths whose first download breaks off halfway. */
  dropOnce: Set<string>;
  /** Serve the LFS file with bytes changed (same size). */
  corrupt: boolean;
  /** Answer 401 without this bearer token. */
  requireToken?: string;
  endpoint: string;
  close(): Promise<void>;
}

async function startHub(): Promise<Hub> {
  const hub = { hits: [] as Hit[], dropOnce: new Set<string>(), corrupt: false } as Hub;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    hub.hits.push({ path, range: req.headers.range, auth: req.headers.authorization });
    if (hub.requireToken && req.headers.authorization !== `Bearer ${hub.requireToken}`) {
      res.writeHead(401, { 'x-error-code': 'RepoNotFound', 'content-type': 'application/json' });
      res.end('{"error":"Repository not found"}');
      return;
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api) {
      if (api[1] !== 'acme/tiny') return error(res, 404, 'RepoNotFound');
      if (api[2] !== 'main' && api[2] !== COMMIT) return error(res, 404, 'RevisionNotFound');
      assert.equal(url.searchParams.get('blobs'), 'true');
      const siblings = Object.entries(FILES).map(([rfilename, f]) => ({
        rfilename,
        size: f.bytes.length,
        blobId: f.lfs ? 'f'.repeat(40) : gitBlob(f.bytes),
        ...(f.lfs ? { lfs: { sha256: sha256(f.bytes), size: f.bytes.length, pointerSize: 134 } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'acme/tiny', sha: COMMIT, siblings }));
      return;
    }
    const resolve = /^\/acme\/tiny\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const lfs = /^\/lfs\/([0-9a-f]{64})$/.exec(path);
    if (resolve) {
      const f = FILES[resolve[2]!];
      if (!f || resolve[1] !== COMMIT) return error(res, 404, 'EntryNotFound');
      // LFS files live elsewhere, as on the hub (a CDN)
      if (f.lfs) {
        res.writeHead(302, { location: `/lfs/${sha256(f.bytes)}`, 'x-linked-etag': `"${sha256(f.bytes)}"` });
        res.end();
        return;
      }
      return serve(req, res, path, f.bytes);
    }
    if (lfs && lfs[1] === sha256(weights)) {
      const bytes = hub.corrupt ? weights.map((b, i) => (i === 1234 ? b ^ 1 : b)) : weights;
      return serve(req, res, path, bytes);
    }
    error(res, 404, 'EntryNotFound');
  });

  function error(res: ServerResponse, status: number, code: string) {
    res.writeHead(status, { 'x-error-code': code });
    res.end();
  }

  function serve(req: IncomingMessage, res: ServerResponse, path: string, bytes: Uint8Array) {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= bytes.length && bytes.length > 0) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    const body = bytes.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length,
      ...(m ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (hub.dropOnce.delete(path)) {
      // half the bytes, then the connection dies
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return hub;
}

/** A port nothing listens on: the endpoint of a hub that cannot be reached. */
async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

let cases = 0;
const freshCache = () => join(dir, `cache-${++cases}`);
const fileHits = (hub: Hub) => hub.hits.filter((h) => !h.path.startsWith('/api/'));

test('parseHubSpec reads owner/name and revision, and refuses what the hub would', () => {
  assert.deepEqual(parseHubSpec('hf:hywang66/LARP-L-long-tokenizer'), {
    repo: 'hywang66/LARP-L-long-tokenizer',
    revision: 'main',
  });
  assert.deepEqual(parseHubSpec('hf:TencentARC/Open-MAGVIT2@refs/pr/3'), {
    repo: 'TencentARC/Open-MAGVIT2',
    revision: 'refs/pr/3',
  });
  assert.ok(isHubSpec('hf:a/b') && !isHubSpec('models/a'));
  for (const bad of ['a/b', 'hf:noslash', 'hf:a/b/c', 'hf:a/b@', 'hf:a/-b', 'hf:a/b..c', 'hf:a/b@x/../y']) {
    assert.throws(() => parseHubSpec(bad), /hf:owner\/name/, bad);
  }
  assert.equal(
    hubFileUrl('https://huggingface.co/', 'a/b', 'refs/pr/1', 'sub dir/x.json'),
    'https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/sub%20dir/x.json',
  );
});

test('downloads the model files, checks them, and takes them from the cache the second time', async () => {
  const hub = await startHub();
  try {
    const cacheDir = freshCache();
    const seen: number[] = [];
    const snap = await hubSnapshot('hf:acme/tiny', {
      endpoint: hub.endpoint,
      cacheDir,
      quiet: true,
      onProgress: (done, total) => seen.push(done, total),
    });
    assert.equal(snap.revision, COMMIT);
    assert.equal(snap.dir, join(cacheDir, 'acme--tiny', 'snapshots', COMMIT));
    assert.deepEqual(snap.files.map((f) => f.name).sort(), SELECTED);
    for (const f of snap.files) {
      const want = FILES[f.name]!.bytes;
      assert.deepEqual(new Uint8Array(readFileSync(join(snap.dir, f.name))), new Uint8Array(want), f.name);
      assert.equal(f.sha256, sha256(want));
      assert.equal(f.size, want.length);
    }
    assert.ok(!existsSync(join(snap.dir, 'train.py')) && !existsSync(join(snap.dir, '.gitattributes')));
    assert.ok(!readdirSync(snap.dir, { recursive: true }).some((n) => String(n).endsWith('.incomplete')));
    const total = SELECTED.reduce((n, f) => n + FILES[f]!.bytes.length, 0);
    assert.deepEqual(seen.slice(-2), [total, total], 'progress reaches the total');
    assert.ok(
      fileHits(hub).every((h) => h.auth === undefined),
      'no token, no Authorization header',
    );

    const before = fileHits(hub).length;
    const again = await hubSnapshot('hf:acme/tiny', { endpoint: hub.endpoint, cacheDir, quiet: true });
    assert.equal(fileHits(hub).length, before, 'no file is requested again');
    assert.deepEqual(again.files, snap.files);
    assert.equal(again.unreachable, undefined);

    // without the hub, the revision's last commit comes from the cache
    const offline = await hubSnapshot('hf:acme/tiny', { endpoint: await closedPort(), cacheDir, quiet: true });
    assert.equal(offline.dir, snap.dir);
    assert.deepEqual(offline.files, snap.files);
    assert.match(offline.unreachable ?? '', /ECONNREFUSED/);
  } finally {
    await hub.close();
  }
});

test('a broken connection is resumed with a Range request, as is a download left by an earlier run', async () => {
  const hub = await startHub();
  try {
    hub.dropOnce.add(`/lfs/${sha256(weights)}`);
    const snap = await hubSnapshot('hf:acme/tiny', {
      endpoint: hub.endpoint,
      cacheDir: freshCache(),
      files: ['model.safetensors'],
      quiet: true,
    });
    assert.deepEqual(new Uint8Array(readFileSync(join(snap.dir, 'model.safetensors'))), weights);
    const gets = hub.hits.filter((h) => h.path.startsWith('/lfs/'));
    assert.equal(gets.length, 2);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt < weights.length, `resumed at ${gets[1]!.range}`);

    // a partial file from a run that was killed: only the rest is fetched
    const cacheDir = freshCache();
    const snapDir = join(cacheDir, 'acme--tiny', 'snapshots', COMMIT);
    mkdirSync(snapDir, { recursive: true });
    writeFileSync(join(snapDir, 'model.safetensors.incomplete'), weights.subarray(0, 1000));
    hub.hits.length = 0;
    const resumed = await hubSnapshot('hf:acme/tiny', {
      endpoint: hub.endpoint,
      cacheDir,
      files: ['model.safetensors'],
      quiet: true,
    });
    assert.deepEqual(
      hub.hits.filter((h) => h.path.startsWith('/lfs/')).map((h) => h.range),
      ['bytes=1000-'],
    );
    assert.equal(resumed.files[0]!.sha256, sha256(weights));
    assert.ok(!existsSync(join(snapDir, 'model.safetensors.incomplete')));
  } finally {
    await hub.close();
  }
});

test('a file whose SHA-256 is not the one the hub lists is refused, and nothing of it is left', async () => {
  const hub = await startHub();
  try {
    hub.corrupt = true;
    const cacheDir = freshCache();
    await assert.rejects(
      hubSnapshot('hf:acme/tiny', { endpoint: hub.endpoint, cacheDir, files: ['model.safetensors'], quiet: true }),
      (e: Error) => {
        assert.match(e.message, /model\.safetensors does not match the hub's listing: its SHA-256 [0-9a-f]{64}/);
        assert.match(e.message, new RegExp(`is not the hub's ${sha256(weights)}`));
        return true;
      },
    );
    const snapDir = join(cacheDir, 'acme--tiny', 'snapshots', COMMIT);
    assert.deepEqual(readdirSync(snapDir), []);
  } finally {
    await hub.close();
  }
});

test('the token from HF_TOKEN or the option goes to the hub as a bearer token', async () => {
  const hub = await startHub();
  try {
    hub.requireToken = 'hf_secret';
    await assert.rejects(
      hubSnapshot('hf:acme/tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), quiet: true }),
      /repository acme\/tiny \(revision main\) not found .*if it is private or gated, set HF_TOKEN/,
    );
    process.env.HF_TOKEN = 'hf_secret';
    try {
      hub.hits.length = 0;
      await hubSnapshot('hf:acme/tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), quiet: true });
      assert.ok(hub.hits.length > 1);
      // the file on the "CDN" is reached by a redirect to the same origin, so it keeps the header too
      assert.ok(hub.hits.every((h) => h.auth === 'Bearer hf_secret'));
      await assert.rejects(
        hubSnapshot('hf:acme/tiny', { endpoint: hub.endpoint, cacheDir: freshCache(), token: 'hf_other' }),
        /the token from the token option cannot read it/,
      );
    } finally {
      delete process.env.HF_TOKEN;
    }
  } finally {
    await hub.close();
  }
});

test('a repository, revision or file that does not exist is named in the message', async () => {
  const hub = await startHub();
  try {
    const o = { endpoint: hub.endpoint, cacheDir: freshCache(), quiet: true };
    await assert.rejects(hubSnapshot('hf:acme/missing', o), /repository acme\/missing \(revision main\) not found/);
    await assert.rejects(hubSnapshot('hf:acme/tiny@v9', o), /revision "v9" not found in acme\/tiny/);
    await assert.rejects(
      hubSnapshot('hf:acme/tiny', { ...o, files: ['config.json', 'nope.ckpt'] }),
      /not in acme\/tiny@main: nope\.ckpt \(it has config\.json, README\.md/,
    );
    assert.equal(fileHits(hub).length, 0);
  } finally {
    await hub.close();
  }
});

test('offline: one message names the files to fetch and where they go; files put there are then used', async () => {
  const endpoint = await closedPort();
  const cacheDir = freshCache();
  const where = join(cacheDir, 'acme--tiny', 'snapshots', 'main');
  await assert.rejects(
    hubSnapshot('hf:acme/tiny', { endpoint, cacheDir, files: ['config.json', 'model.safetensors'] }),
    (e: Error) => {
      assert.match(e.message, /^cannot reach the Hugging Face Hub \(http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\)/);
      assert.ok(e.message.includes(`${endpoint}/acme/tiny/resolve/main/config.json\n`), e.message);
      assert.ok(e.message.includes(`${endpoint}/acme/tiny/resolve/main/model.safetensors\n`), e.message);
      assert.ok(e.message.includes(`put them in ${where} `), e.message);
      assert.match(e.message, /`vtok import <folder>`/);
      return true;
    },
  );
  // without a file list, the message points at the repository's listing
  await assert.rejects(hubSnapshot('hf:acme/tiny', { endpoint, cacheDir }), (e: Error) => {
    assert.ok(e.message.includes(`model files listed at ${endpoint}/acme/tiny/tree/main `), e.message);
    assert.ok(e.message.includes(`each from ${endpoint}/acme/tiny/resolve/main/<file>.\n`), e.message);
    assert.ok(e.message.includes(`put them in ${where} `), e.message);
    return true;
  });
  process.env.HF_HUB_OFFLINE = '1';
  try {
    await assert.rejects(hubSnapshot('hf:acme/tiny', { cacheDir }), /\(HF_HUB_OFFLINE is set\)/);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
  }

  mkdirSync(where, { recursive: true });
  writeFileSync(join(where, 'config.json'), FILES['config.json']!.bytes);
  writeFileSync(join(where, 'model.safetensors'), weights);
  const snap = await hubSnapshot('hf:acme/tiny', { endpoint, cacheDir });
  assert.equal(snap.dir, where);
  assert.equal(snap.revision, 'main');
  assert.deepEqual(
    snap.files.map((f) => [f.name, f.sha256]),
    [
      ['config.json', sha256(FILES['config.json']!.bytes)],
      ['model.safetensors', sha256(weights)],
    ],
  );
});
