import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openTokenFile } from '../../src/io/tokenfile.js';
import { readIndex, readShard } from '../../src/corpus/shards.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { MAIN, vtok } from './run-vtok.js';

/**
 * `vtok tokenize` says "fine" only when it did what was asked: a run that tokenizes no clip fails and leaves nothing,
 * a video file is a corpus of one clip, colour needs --gray for a gray model (as in encode), a resumed run keeps its
 * shard size, and one run at a time writes into a folder. Child processes are waited for without tight deadlines:
 * these tests run on loaded machines.
 */
const SHIPPED = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const dir = tempDir('rel-tok');

/** A command that must fail: non-zero exit, its last line one vtok message matching `re`, no stack trace. */
async function fails(args: string[], re: RegExp): Promise<string> {
  const r = await vtok(...args);
  const what = `vtok ${args.join(' ')}`;
  assert.notEqual(r.code, 0, `${what} should fail`);
  const last = r.stderr.trim().split('\n').pop()!;
  assert.ok(last.startsWith('vtok: '), `${what}: ${r.stderr}`);
  assert.match(last, re, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return last;
}

async function ok(...args: string[]): Promise<{ clips: number; skipped: number; processed: number; resumed: number }> {
  const r = await vtok(...args, '--json');
  assert.equal(r.code, 0, `vtok ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Every entry under `root` with size and mtime, to show a refused run changed nothing. */
function snapshot(root: string): string {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((n) => `${n} ${statSync(join(root, n)).size} ${statSync(join(root, n)).mtimeMs}`)
    .join('\n');
}

const files = (async () => {
  const grayArgs = ['-vf', 'format=gray', '-pix_fmt', 'yuv420p'];
  const gray = await makeTestVideo(join(dir, 'gray.mp4'), { frames: 6, args: grayArgs });
  writeFileSync(join(dir, 'gray.txt'), 'a gray test pattern\n');
  const colour = await makeTestVideo(join(dir, 'colour.mp4'), { frames: 6, args: ['-pix_fmt', 'yuv420p'] });
  const junk = join(dir, 'junk');
  mkdirSync(junk);
  writeFileSync(join(junk, 'a.mp4'), 'not a video');
  writeFileSync(join(junk, 'b.mp4'), '');
  return { gray, colour, junk };
})();

test('tokenize: no clip tokenized is a failure that leaves nothing; skipped clips beside others are fine', async () => {
  const f = await files;
  for (const workers of ['0', '1']) {
    const out = join(dir, `none-${workers}`);
    const reason = /none of the 2 clips could be tokenized \(the first: .*junk\/[ab]\.mp4: (not a video|file is empty)/;
    await fails(['tokenize', f.junk, '--out', out, '--workers', workers], reason);
    assert.ok(!existsSync(out), `--workers ${workers}: ${out} was left behind`);
  }
  // into a folder that exists: the folder stays, empty as it was
  const existing = join(dir, 'none-existing');
  mkdirSync(existing);
  await fails(['tokenize', f.junk, '--out', existing], /none of the 2 clips could be tokenized/);
  assert.deepEqual(readdirSync(existing), []);
  // a list naming one missing file beside a readable one: the missing one is skipped, the run succeeds
  const list = join(dir, 'list.txt');
  writeFileSync(list, 'gray.mp4\nnot-there.mp4\n');
  const out = join(dir, 'listed');
  const s = await ok('tokenize', list, '--out', out);
  assert.deepEqual([s.clips, s.skipped], [1, 1]);
  assert.match(readIndex(out).skipped[0]!.reason, /no such file/);
});

test('tokenize: a video file is a corpus of one clip, its sidecar the caption, its ids those of encode', async () => {
  const f = await files;
  const out = join(dir, 'one');
  const s = await ok('tokenize', f.gray, '--out', out, '--workers', '0');
  assert.deepEqual([s.clips, s.skipped], [1, 0]);
  const index = readIndex(out);
  assert.equal(index.clips[0]!.caption, 'a gray test pattern');
  assert.ok(index.clips[0]!.source.endsWith('gray.mp4'));
  // the same clip through `vtok encode`: the same first clip of tokens (one rule for frames and channels)
  const enc = join(dir, 'gray.vtok');
  const e = await vtok('encode', f.gray, '--model', SHIPPED, '-o', enc);
  assert.equal(e.code, 0, e.stderr);
  const first = (await (await openTokenFile(enc)).clips().next()).value!;
  const shard = readShard(join(out, index.clips[0]!.shard)).clips[0]!;
  assert.deepEqual(shard.grid, first.grid);
  assert.deepEqual([...shard.ids], [...first.ids]);
  // colour for the gray model: refused without --gray (nothing left), converted with it
  const colourOut = join(dir, 'colour');
  const refused = /colour\.mp4: the clips are in colour and the model takes gray \(1 channel\); add --gray to convert/;
  await fails(['tokenize', f.colour, '--out', colourOut], refused);
  assert.ok(!existsSync(colourOut));
  assert.equal((await ok('tokenize', f.colour, '--out', colourOut, '--gray')).clips, 1);
});

test("tokenize: a resumed run keeps the folder's shard size; another one is refused and changes nothing", async () => {
  const out = join(dir, 'sizes');
  const mnist = (n: number) => [
    'tokenize',
    '--data',
    'captioned-mnist',
    '--clips',
    String(n),
    '--out',
    out,
    '--workers',
    '0',
  ];
  assert.equal((await ok(...mnist(2), '--shard-size', '1')).clips, 2);
  const s = await ok(...mnist(3));
  assert.deepEqual([s.clips, s.resumed, s.processed], [3, 2, 1]);
  const index = readIndex(out);
  assert.equal(index.shardSize, 1);
  assert.deepEqual(
    index.shards.map((x) => x.clips),
    [1, 1, 1],
  );
  const before = snapshot(out);
  const refused = /these shards were cut with --shard-size 1, not 2: resume with --shard-size 1 \(or without it\)/;
  await fails([...mnist(5), '--shard-size', '2'], refused);
  assert.equal(snapshot(out), before);
});

const FORTY = ['tokenize', '--data', 'captioned-mnist', '--clips', '40', '--workers', '0', '--shard-size', '4'];

/** Starts `vtok tokenize` on enough clips to be caught at work; resolves its exit code and stderr. */
function start(out: string) {
  const env = { ...process.env, VTOK_THREADS: '1' };
  const p = spawn(process.execPath, [MAIN, ...FORTY, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  p.stderr.on('data', (b) => (stderr += b));
  const exited = new Promise<{ code: number | null; stderr: string }>((r) => {
    p.on('close', (code) => r({ code, stderr }));
  });
  return { p, exited };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  // generous: a loaded machine may take long to start node and load the model
  const t0 = Date.now();
  while (!cond()) {
    assert.ok(Date.now() - t0 < 300_000, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('tokenize: one run per --out (a lock holding its pid); a second is refused, a stale lock taken over', async () => {
  const out = join(dir, 'locked');
  const lock = join(out, 'tokenize.lock');
  const a = start(out);
  await until(() => existsSync(lock), 'the lock');
  // stopped, the first run is surely still at work while the second tries
  a.p.kill('SIGSTOP');
  try {
    assert.equal(readFileSync(lock, 'utf8').trim(), String(a.p.pid));
    const held = new RegExp(`another vtok tokenize \\(pid ${a.p.pid}\\) is writing to .*locked`);
    await fails([...FORTY, '--out', out], held);
    assert.equal(readFileSync(lock, 'utf8').trim(), String(a.p.pid), 'the refused run left the lock alone');
  } finally {
    a.p.kill('SIGCONT');
  }
  const r = await a.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(lock), 'the lock is removed at the end');
  assert.equal(readIndex(out).clips.length, 40);

  // a lock whose process is gone (killed: it could not remove it) does not block the next run
  const dead = spawn(process.execPath, ['-e', '']);
  const pid = dead.pid!;
  await new Promise((r) => dead.on('close', r));
  const stale = join(dir, 'stale');
  mkdirSync(stale);
  writeFileSync(join(stale, 'tokenize.lock'), `${pid}\n`);
  const s = await ok('tokenize', '--data', 'captioned-mnist', '--clips', '2', '--out', stale, '--workers', '0');
  assert.equal(s.clips, 2);
  assert.ok(!existsSync(join(stale, 'tokenize.lock')));
});

test('tokenize: Ctrl-C stops the run, removes the lock and keeps only whole shards', async () => {
  const out = join(dir, 'interrupted');
  const c = start(out);
  await until(() => existsSync(join(out, 'tokenize.lock')), 'the lock');
  c.p.kill('SIGINT');
  const r = await c.exited;
  assert.equal(r.code, 130, r.stderr);
  const stopped = /Ctrl-C: stopped; (nothing written|the shards written are kept in .*interrupted: run the same)/;
  assert.match(r.stderr, stopped);
  // either nothing at all (no shard was whole yet), or a resumable folder without the lock
  if (existsSync(out)) {
    assert.ok(!existsSync(join(out, 'tokenize.lock')));
    assert.ok(readIndex(out).clips.length > 0);
    assert.equal((await ok(...FORTY, '--out', out)).clips, 40);
  }
});
