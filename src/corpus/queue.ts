import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import PgBoss from 'pg-boss';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { VtokError } from '../util/errors.js';
import { watchInterrupts } from '../util/interrupt.js';
import { progress } from '../util/progress.js';
import { buildIndex, readShard, writeIndex, type ShardIndex } from './shards.js';
import {
  ChunkTokenizer,
  noClipError,
  prepareCorpus,
  type CorpusSpec,
  type PreparedCorpus,
  type TokenizeOptions,
} from './tokenize-corpus.js';
import { tokenizerIdentity } from '../tokenizers/identity.js';

/**
 * `vtok tokenize --queue` and `vtok worker`: corpus tokenization across machines on pg-boss (a job queue kept in
 * PostgreSQL). The enqueuer cuts the clips no shard holds yet into chunks, exactly as a local run does, and sends
 * one job per chunk; workers on any machine take jobs, run the same per-chunk tokenizer as local worker threads
 * and write the same atomic, checksummed shards to a shared folder.
 *
 * Exactly once, by construction rather than by coordination:
 * - a job's shard has a fixed name (its first clip's ordinal, a clip no shard held when it was enqueued), so a
 *   retried job, or a job an expired-but-alive worker is still running, rewrites the same file atomically with the
 *   same clips: a clip can never reach two shard files through retries;
 * - a job's id is derived from its shard folder and shard name, and pg-boss ignores a job whose id exists, so
 *   enqueuing again while jobs are queued or running adds no second job for a chunk;
 * - a worker whose job's shard is already whole on disk completes it without tokenizing again;
 * - chunks of another size over the same folder are refused while jobs of the first size are live (they could
 *   overlap), and the index is rebuilt from the shards (as for local runs), which refuses a clip found in two.
 * A database unique constraint on clip ids was the alternative; it would still need the shard write and the
 * database commit to agree after a crash between them, which fixed shard names give for free.
 *
 * A worker killed mid-job holds its job until the job's expiry (`expireSeconds`): pg-boss's supervisor then fails
 * it, and it is retried by another worker, up to `retries` times, the failure reason kept in the job's output.
 */
export const QUEUE_NAME = 'vtok-tokenize';

/** How often each client runs pg-boss's supervisor (expiring jobs of dead workers): cheap, and serialised by a lock. */
const SUPERVISE_SECONDS = 2;

export interface QueueJob {
  /** The shard folder as the enqueuing machine sees it (a worker may see it elsewhere: `vtok worker --out`). */
  target: string;
  model: string;
  /** Identity of the tokenizer's weights: a worker with other weights under the same path refuses the job. */
  identity: string;
  corpus: CorpusSpec;
  size: number;
  ordinals: number[];
  file: string;
  /** Clips per chunk: chunks of two sizes over one folder could overlap, so one size at a time. */
  shardSize: number;
  /** Colour clips are converted for a gray model (`vtok tokenize --gray`). */
  gray?: boolean;
}

/** The queue's address without its password, for messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

/** Connects to the queue at `url` (a postgres:// URL), creating pg-boss's schema and the queue if needed. */
export async function openQueue(url: string): Promise<PgBoss> {
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new VtokError(`--queue must be a postgres:// URL (PostgreSQL for pg-boss), got ${JSON.stringify(url)}`);
  const boss = new PgBoss({
    connectionString: url,
    maintenanceIntervalSeconds: SUPERVISE_SECONDS,
    schedule: false,
    application_name: 'vtok',
  });
  // pg-boss reports background errors (a lost connection) as events; without a listener they would crash
  boss.on('error', (e) => process.stderr.write(`job queue: ${e.message}\n`));
  try {
    await boss.start();
    if (!(await boss.getQueue(QUEUE_NAME))) {
      // two workers starting together may both try: the loser's error is harmless
      await boss.createQueue(QUEUE_NAME).catch(async (e) => {
        if (!(await boss.getQueue(QUEUE_NAME))) throw e;
      });
    }
  } catch (e) {
    await boss.stop({ graceful: false, wait: false }).catch(() => undefined);
    throw new VtokError(`cannot use the job queue at ${redact(url)}: ${(e as Error).message}`);
  }
  return boss;
}

/** A job id (a UUID, as pg-boss stores them) fixed by the shard folder and shard name. */
export function jobId(target: string, file: string): string {
  const h = createHash('sha256').update(`${target}\0${file}`).digest('hex');
  // shaped as a version-5-style UUID (name-based), so PostgreSQL's uuid type takes it
  return (
    `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-` +
    `${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
  );
}

export interface EnqueueOptions extends Omit<TokenizeOptions, 'workers'> {
  queue: string;
  /** Retries of a failed or expired job (default 3). */
  retries?: number;
  /** Seconds a worker may hold a job before it counts as dead and the job is retried (default 900). */
  expireSeconds?: number;
  /** Wait for the jobs to finish, then write the index (default true). */
  wait?: boolean;
}

export interface EnqueueSummary {
  /** Chunks no shard held yet, one job each (a job an earlier run queued is not sent twice). */
  jobs: number;
  /** Sources already done before this run. */
  resumed: number;
  /** Set when waited for: the index's totals, and the jobs that failed for good with their last reason. */
  clips?: number;
  skipped?: number;
  shards?: number;
  failed?: { file: string; reason: string }[];
  seconds: number;
  index?: string;
}

export async function enqueueCorpus(o: EnqueueOptions): Promise<EnqueueSummary> {
  const t0 = Date.now();
  const target = resolve(o.out);
  // the queue first: one that cannot be used leaves nothing behind
  const boss = await openQueue(o.queue);
  let p: PreparedCorpus | undefined;
  try {
    p = prepareCorpus(o);
    const shardSize = p.shardSize;
    const { rows } = await boss
      .getDb()
      .executeSql(
        "SELECT DISTINCT data->>'shardSize' AS size FROM pgboss.job WHERE name = " +
          "$1 AND state IN ('created', 'retry', 'active') AND data->>'target' = $2",
        [QUEUE_NAME, target],
      );
    const other = rows.map((r: { size: string }) => Number(r.size)).find((n: number) => n !== shardSize);
    if (other !== undefined)
      throw new VtokError(
        `jobs for this folder with --shard-size ${other} are still ` +
          'in the queue: use the same --shard-size, or wait for them',
        o.out,
      );
    const { corpus, info, size } = p;
    const jobs = p.chunks.map((c) => ({
      id: jobId(target, c.file),
      name: QUEUE_NAME,
      data: {
        target,
        model: resolve(o.model),
        identity: info.tokenizer.identity,
        corpus: jobCorpus(corpus, c.ordinals),
        size,
        ordinals: jobOrdinals(corpus, c.ordinals),
        file: c.file,
        shardSize,
        ...(o.gray ? { gray: true } : {}),
      } satisfies QueueJob,
      retryLimit: o.retries ?? 3,
      retryDelay: 1,
      expireInSeconds: o.expireSeconds ?? 900,
    }));
    // from here on workers may write into the folder: it stays, whatever happens here
    p.keep = true;
    // pg-boss inserts in one statement that skips ids already there
    for (let k = 0; k < jobs.length; k += 500) {
      const part = jobs.slice(k, k + 500);
      await boss.insert(part);
      // a chunk whose job failed for good in an earlier run gets another attempt
      await boss.retry(
        QUEUE_NAME,
        part.map((j) => j.id),
      );
    }
    const summary: EnqueueSummary = { jobs: jobs.length, resumed: p.done.size, seconds: 0 };
    if (o.wait === false) return { ...summary, seconds: (Date.now() - t0) / 1000 };
    const failed = await waitForJobs(
      boss,
      target,
      p.chunks.map((c) => c.file),
      o.quiet,
    );
    const index: ShardIndex = buildIndex(o.out, info);
    writeIndex(o.out, index);
    if (index.clips.length === 0 && failed.length === 0) throw noClipError(index);
    return {
      ...summary,
      clips: index.clips.length,
      skipped: index.skipped.length,
      shards: index.shards.length,
      failed,
      seconds: (Date.now() - t0) / 1000,
      index: join(o.out, 'index.json'),
    };
  } finally {
    p?.close();
    await boss.stop({ graceful: false, wait: true });
  }
}

/** A job's own part of a file corpus (its items, not the whole list); data sets travel whole (a few fields). */
function jobCorpus(corpus: CorpusSpec, ordinals: number[]): CorpusSpec {
  return corpus.kind === 'files' ? { ...corpus, items: ordinals.map((i) => corpus.items[i]!) } : corpus;
}

function jobOrdinals(corpus: CorpusSpec, ordinals: number[]): number[] {
  return corpus.kind === 'files' ? ordinals.map((_, k) => k) : ordinals;
}

/** Waits until each file's shard exists or its job failed for good; returns the failures with their reasons. */
async function waitForJobs(
  boss: PgBoss,
  target: string,
  files: string[],
  quiet?: boolean,
): Promise<{ file: string; reason: string }[]> {
  const open = new Set(files);
  const failed: { file: string; reason: string }[] = [];
  const bar = progress('tokenize (queue)', files.length, { quiet });
  try {
    for (;;) {
      for (const f of open) if (existsSync(join(target, f))) open.delete(f);
      if (open.size > 0) {
        const byId = new Map([...open].map((f) => [jobId(target, f), f]));
        // one query for all open jobs (pg-boss 10's job table; getJobById would be one query per job)
        const { rows } = await boss
          .getDb()
          .executeSql(`SELECT id, state, output FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])`, [
            QUEUE_NAME,
            [...byId.keys()],
          ]);
        const found = new Map(rows.map((r: { id: string; state: string; output: unknown }) => [r.id, r]));
        for (const [id, f] of byId) {
          // a job missing from the live table may have been archived (pg-boss moves old jobs there)
          const job = found.get(id) ?? (await boss.getJobById(QUEUE_NAME, id, { includeArchive: true }));
          const reason = !job
            ? 'the job is no longer in the queue'
            : job.state === 'failed' || job.state === 'cancelled'
              ? failureReason(job.output)
              : job.state === 'completed' && !existsSync(join(target, f))
                ? `the job completed but its shard is not in ${target} (do the workers write where this machine reads?)`
                : undefined;
          if (reason) {
            open.delete(f);
            failed.push({ file: f, reason });
          }
        }
      }
      bar.update(files.length - open.size, { failed: failed.length });
      if (open.size === 0) return failed;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    bar.stop();
  }
}

function failureReason(output: unknown): string {
  const o = output as { reason?: string; message?: string } | null;
  return o?.reason ?? o?.message ?? (o ? JSON.stringify(o) : 'no reason recorded');
}

export interface WorkerOptions {
  queue: string;
  /** Where this machine sees the shard folder (default: the path the job was enqueued with). */
  out?: string;
  /** Tokenizer run directory on this machine (default: the path the job was enqueued with). */
  model?: string;
  /** Stop after this many seconds without a job (default: run until stopped). */
  idleExit?: number;
  quiet?: boolean;
}

export interface WorkerSummary {
  /** Jobs completed (tokenized, or found already written); clips tokenized; jobs that failed here. */
  jobs: number;
  clips: number;
  reused: number;
  failed: number;
  seconds: number;
  /** The signal that stopped the worker, if one did. */
  signal?: NodeJS.Signals;
}

/**
 * Takes jobs until stopped (SIGINT/SIGTERM: the current job is finished first) or idle for `idleExit` seconds.
 * A job that throws is failed with its reason; pg-boss retries it (on any worker) until its retry limit.
 */
export async function runQueueWorker(o: WorkerOptions): Promise<WorkerSummary> {
  const t0 = Date.now();
  const boss = await openQueue(o.queue);
  const stop = watchInterrupts('finishing the current job, then stopping');
  const log = (m: string) => void (o.quiet || process.stderr.write(`worker ${hostname()}:${process.pid}: ${m}\n`));
  const s: WorkerSummary = { jobs: 0, clips: 0, reused: 0, failed: 0, seconds: 0 };
  const tokenizers = new Map<string, { tok: Tokenizer; identity: string }>();
  const threads = Number(process.env.VTOK_THREADS) || availableParallelism();
  let idleSince = Date.now();
  try {
    while (!(await stop.poll())) {
      const [job] = await boss.fetch<QueueJob>(QUEUE_NAME, { batchSize: 1 });
      if (!job) {
        if (o.idleExit !== undefined && Date.now() - idleSince >= o.idleExit * 1000) break;
        await sleepUnless(500, () => stop.signal !== null);
        continue;
      }
      const d = job.data;
      const dir = o.out ?? d.target;
      log(`job ${d.file} (${d.ordinals?.length} clips)`);
      try {
        // the file name comes from the database: only a shard name, never a path elsewhere
        if (
          typeof d.file !== 'string' ||
          !/^shard-\d+\.vtks$/.test(d.file) ||
          !Array.isArray(d.ordinals) ||
          typeof d.target !== 'string'
        )
          throw new VtokError('not a vtok tokenize job (malformed data)');
        let whole = false;
        if (existsSync(join(dir, d.file))) {
          try {
            readShard(join(dir, d.file));
            whole = true;
          } catch {
            // a damaged shard of an earlier attempt is rewritten below
          }
        }
        if (whole) {
          s.reused++;
          log(`job ${d.file}: its shard is already whole (an earlier attempt wrote it)`);
        } else {
          const model = o.model ?? d.model;
          let t = tokenizers.get(model);
          if (!t) {
            const { tokenizer, module } = loadTokenizer(model);
            t = { tok: tokenizer, identity: tokenizerIdentity(tokenizer, module.stateDict()).identity };
            tokenizers.set(model, t);
          }
          if (t.identity !== d.identity)
            throw new VtokError(`the tokenizer at ${model} is not the one the job was enqueued with (weights differ)`);
          mkdirSync(dir, { recursive: true });
          const init = { model, corpus: d.corpus, out: dir, size: d.size, threads, gray: d.gray === true };
          const r = await new ChunkTokenizer(init, t.tok).run(d.ordinals, d.file);
          s.clips += r.clips.length;
        }
        await boss.complete(QUEUE_NAME, job.id, { file: d.file, worker: `${hostname()}:${process.pid}` });
        s.jobs++;
      } catch (e) {
        s.failed++;
        const reason = (e as Error).message;
        log(`job ${d.file} failed: ${reason}`);
        await boss.fail(QUEUE_NAME, job.id, { reason, worker: `${hostname()}:${process.pid}` });
      }
      idleSince = Date.now();
    }
  } finally {
    stop.dispose();
    await boss.stop({ graceful: false, wait: true });
  }
  return { ...s, seconds: (Date.now() - t0) / 1000, ...(stop.signal ? { signal: stop.signal } : {}) };
}

async function sleepUnless(ms: number, stopNow: () => boolean): Promise<void> {
  for (let t = 0; t < ms && !stopNow(); t += 100) await new Promise((r) => setTimeout(r, 100));
}
