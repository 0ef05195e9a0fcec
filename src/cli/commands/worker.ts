import type { Command } from 'commander';
import { runQueueWorker } from '../../corpus/queue.js';
import { Interrupted } from '../../util/interrupt.js';
import { checkOutputDir } from '../../util/output-path.js';
import { num } from '../../util/options.js';

/**
 * `vtok worker --queue <url> [--out shared/path]`: one machine's share of a corpus enqueued by
 * `vtok tokenize … --queue <url>`; run it on as many machines as there are. Ctrl-C/SIGTERM finishes the current job
 * first.
 */
interface Opts {
  queue: string;
  out?: string;
  model?: string;
  idleExit?: number;
  json?: boolean;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('take tokenize jobs from a job queue (pg-boss on PostgreSQL) and write their shards')
    .requiredOption('--queue <url>', 'the job queue: a postgres:// URL')
    .option('--out <dir>', 'where this machine sees the shard folder (default: the --out the jobs were enqueued with)')
    .option(
      '--model <run>',
      'where this machine has the tokenizer run (default: ' +
        'the --model the jobs were enqueued with; its weights must match)',
    )
    .option(
      '--idle-exit <s>',
      'exit after this many seconds without a job (default: run until stopped)',
      num('--idle-exit', { min: 0 }),
    )
    .option('--json', 'print a JSON summary')
    .action(async (o: Opts) => {
      const out = o.out === undefined ? undefined : checkOutputDir(o.out, { option: '--out' });
      const s = await runQueueWorker({ queue: o.queue, out, model: o.model, idleExit: o.idleExit, quiet: o.json });
      if (o.json) console.log(JSON.stringify(s));
      else
        console.log(
          `${s.jobs} jobs (${s.reused} already written), ${s.clips} clips ` +
            `tokenized, ${s.failed} failed, in ${s.seconds.toFixed(1)} s`,
        );
      if (s.signal)
        throw new Interrupted(
          s.signal,
          'stopped after the current job; unfinished jobs stay in the queue for other workers',
        );
    });
}
