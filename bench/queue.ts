import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { enqueueCorpus } from '../src/corpus/queue.js';
import { tokenizeCorpus } from '../src/corpus/tokenize-corpus.js';
import { tempDir } from '../test/io/fixtures.js';
import { startTestPostgres } from '../test/corpus/postgres-server.js';

/**
 * Corpus tokenization throughput on the job queue: `vtok worker` processes against an embedded PostgreSQL, clips/s
 * from the workers' start to the last shard (start-up and tokenizer loading included), next to the local
 * worker-thread pipeline on the same corpus. Args: [clips=96] [shard-size=4].
 */
const MODEL = fileURLToPath(new URL('../../models/magvit2-tiny', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export async function main(args: string[]): Promise<void> {
  const clips = Number(args[0] ?? 96);
  const shardSize = Number(args[1] ?? 4);
  const corpus = { kind: 'captioned-mnist' as const, split: 'train' as const, seed: 0, clips };
  const pg = await startTestPostgres();
  const results: Record<string, number | string> = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    clips,
    shardSize,
    loadBefore: loadavg()[0]!.toFixed(2),
  };
  try {
    for (const [workers, threads] of [
      [1, 2],
      [2, 1],
      [1, 1],
    ] as const) {
      const out = tempDir('bench-queue');
      await enqueueCorpus({ corpus, model: MODEL, out, shardSize, queue: pg.url, wait: false, quiet: true });
      const t0 = Date.now();
      const procs = Array.from({ length: workers }, () =>
        spawn(process.execPath, [MAIN, 'worker', '--queue', pg.url, '--idle-exit', '1', '--json'], {
          stdio: 'ignore',
          env: { ...process.env, VTOK_THREADS: String(threads) },
        }),
      );
      const s = await enqueueCorpus({ corpus, model: MODEL, out, shardSize, queue: pg.url, quiet: true });
      const seconds = (Date.now() - t0) / 1000;
      if (s.clips !== clips) throw new Error(`queue run: ${s.clips} of ${clips} clips`);
      await Promise.all(procs.map((p) => new Promise((r) => p.on('close', r))));
      results[`queue_${workers}w_${threads}t_clips_per_s`] = +(clips / seconds).toFixed(2);
      process.stderr.write(
        `queue, ${workers} worker(s) × ${threads} thread(s): ${(clips / seconds).toFixed(2)} clips/s\n`,
      );
      rmSync(out, { recursive: true, force: true });
    }
    for (const workers of [1, 2]) {
      const out = tempDir('bench-local');
      process.env.VTOK_THREADS = '2';
      const s = await tokenizeCorpus({ corpus, model: MODEL, out, shardSize, workers, quiet: true });
      results[`local_${workers}w_clips_per_s`] = +s.clipsPerSecond.toFixed(2);
      process.stderr.write(`local, ${workers} worker thread(s): ${s.clipsPerSecond.toFixed(2)} clips/s\n`);
      rmSync(out, { recursive: true, force: true });
    }
  } finally {
    await pg.stop();
  }
  results.loadAfter = loadavg()[0]!.toFixed(2);
  console.log(JSON.stringify(results));
}
