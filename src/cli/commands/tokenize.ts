import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { scanCaptionedFolder, sidecarPath } from '../../data/captioned-folder.js';
import { CAPTIONED_SPLITS } from '../../data/captioned-mnist.js';
import { VIDEO_EXTS } from '../../data/folder.js';
import { enqueueCorpus } from '../../corpus/queue.js';
import { tokenizeCorpus, type CorpusSpec } from '../../corpus/tokenize-corpus.js';
import { shippedModel } from '../../io/shipped.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir } from '../../util/output-path.js';
import { int } from '../../util/options.js';

/**
 * `vtok tokenize <folder|list|video> | --data captioned-mnist|captioned-synthetic --clips N --model <run> --out …`:
 * a corpus → token shards for LM training, on parallel workers, resumable (re-run the same command). With
 * `--queue <url>` the chunks go to a job queue for `vtok worker`s on other machines instead (src/corpus/queue.ts).
 */

type Item = { path: string; caption?: string; label?: number };

/** A video with its caption from the sidecar .txt file beside it, if there is one. */
function captioned(path: string): Item {
  const txt = sidecarPath(path);
  const caption = existsSync(txt) ? readFileSync(txt, 'utf8').trim() : undefined;
  return caption ? { path, caption } : { path };
}

/**
 * The input's videos: a folder's (class labels from its labels.tsv or subfolders, data/captioned-folder), a video
 * file as a corpus of one clip (known video extension), or a list file's (one video path per line, relative to the
 * list). A list is text: a file with NUL bytes or that is not UTF-8 is refused rather than read as paths, and so is
 * a list none of whose files exists.
 */
function readInput(input: string): { items: Item[]; classes?: string[] } {
  if (!existsSync(input)) throw new VtokError('no such folder, video or list file', input);
  const st = statSync(input);
  if (st.isDirectory()) return scanCaptionedFolder(input);
  if (VIDEO_EXTS.has(extname(input).toLowerCase())) return { items: [captioned(resolve(input))] };
  const notList = `neither a folder, a video (${[...VIDEO_EXTS].join(' ')}) nor a list file of video paths`;
  if (!st.isFile()) throw new VtokError(notList, input);
  const head = Buffer.alloc(Math.min(st.size, 8192));
  const fd = openSync(input, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (head.includes(0)) throw new VtokError(`${notList} (binary content)`, input);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(input));
  } catch {
    throw new VtokError(`${notList} (not UTF-8 text)`, input);
  }
  const base = dirname(input);
  const paths = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => resolve(base, l));
  if (paths.length === 0) throw new VtokError('the list names no videos', input);
  // a missing file among others is skipped and reported like an unreadable one; a list of missing files is a mistake
  if (!paths.some((p) => existsSync(p))) {
    const n = paths.length;
    const first = paths[0]!;
    if (n === 1) throw new VtokError(`the one file the list names does not exist: ${first}`, input);
    throw new VtokError(`none of the ${n} files the list names exists (the first: ${first})`, input);
  }
  return { items: paths.map(captioned) };
}

interface Opts {
  data?: string;
  clips?: number;
  split: string;
  seed: number;
  frames?: number;
  model: string;
  out: string;
  workers?: number;
  shardSize?: number;
  size?: number;
  gray?: boolean;
  json?: boolean;
  queue?: string;
  retries: number;
  expire: number;
  wait: boolean;
}

export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('tokenize a corpus into token shards for LM training (parallel, resumable)')
    .argument(
      '[input]',
      'folder of videos (captions in sidecar .txt files, class labels in labels.tsv), a list file of video paths, ' +
        'or one video',
    )
    .option('--data <name>', 'a built-in captioned data set instead: captioned-mnist or captioned-synthetic')
    .option('--clips <n>', 'clips of the data set', int('--clips', { min: 1 }))
    .option(
      '--split <split>',
      'data set split: train, val (for --val-shards), test or unseen (captioned-mnist; the t2v study evaluates test ' +
        'and unseen)',
      'train',
    )
    .option('--seed <n>', 'data set seed', int('--seed', { min: 0 }), 0)
    .option('--frames <n>', "frames per clip (default: the tokenizer's clip length)", int('--frames', { min: 1 }))
    .option(
      '--model <run>',
      `tokenizer run directory (default: the shipped ${shippedModel('gray video').name})`,
      shippedModel('gray video').path,
    )
    .requiredOption('--out <dir>', 'folder for the shards and index.json')
    .option('--workers <n>', 'worker threads (default: cores; 0 = none)', int('--workers', { min: 0 }))
    .option('--shard-size <n>', 'clips per shard (default 64; resuming: as before)', int('--shard-size', { min: 1 }))
    .option(
      '--size <px>',
      "frame size for video files (resize + center crop; default: the tokenizer's training size)",
      int('--size', { min: 1 }),
    )
    .option('--gray', 'convert colour clips to gray for a gray model (without it they are refused)')
    .option('--json', 'print a JSON summary')
    .option(
      '--queue <url>',
      'enqueue one job per shard on this job queue (a postgres:// URL, ' +
        'pg-boss) for `vtok worker`s on any machine, instead of tokenizing here',
    )
    .option(
      '--retries <n>',
      'with --queue: retries of a failed job, or of one whose worker died',
      int('--retries', { min: 0 }),
      3,
    )
    .option(
      '--expire <s>',
      'with --queue: seconds a worker may hold a job before it counts as dead',
      int('--expire', { min: 1 }),
      900,
    )
    .option('--no-wait', 'with --queue: return once enqueued (run again to wait and write the index)')
    .action(async (input: string | undefined, o: Opts, cmd: Command) => {
      // options of one mode are refused by name in the other, rather than silently ignored
      const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      if (o.queue && given('workers'))
        throw new VtokError('--workers is for tokenizing here; with --queue, start `vtok worker` on each machine');
      for (const [key, flag] of [
        ['retries', '--retries'],
        ['expire', '--expire'],
        ['wait', '--no-wait'],
      ] as const) {
        if (!o.queue && given(key)) throw new VtokError(`${flag} applies to --queue only`);
      }
      let corpus: CorpusSpec;
      if (o.data) {
        if (input) throw new VtokError('give either an input folder/list or --data, not both');
        if (!o.clips) throw new VtokError(`--data ${o.data} needs --clips N`);
        if (o.data === 'captioned-mnist') {
          if (!(CAPTIONED_SPLITS as readonly string[]).includes(o.split))
            throw new VtokError(`--split must be ${CAPTIONED_SPLITS.join(', ')}, got ${JSON.stringify(o.split)}`);
          corpus = {
            kind: 'captioned-mnist',
            split: o.split as 'train',
            seed: o.seed,
            clips: o.clips,
            frames: o.frames,
          };
        } else if (o.data === 'captioned-synthetic') {
          corpus = { kind: 'captioned-synthetic', seed: o.seed, clips: o.clips, frames: o.frames };
        } else throw new VtokError(`unknown data set ${JSON.stringify(o.data)} (captioned-mnist, captioned-synthetic)`);
      } else {
        if (!input) throw new VtokError('give an input folder, list file or video, or --data');
        const { items, classes } = readInput(input);
        const labelled = items.some((it) => it.label !== undefined);
        corpus = { kind: 'files', name: resolve(input), items, ...(labelled ? { classes } : {}) };
      }
      checkOutputDir(o.out, { option: '--out', inputs: [input] });
      const { shardSize, size, gray } = o;
      const run = { corpus, model: o.model, out: o.out, shardSize, size, gray, quiet: o.json };
      if (o.queue) {
        const queued = { ...run, queue: o.queue, retries: o.retries, expireSeconds: o.expire, wait: o.wait };
        const q = await enqueueCorpus(queued);
        if (o.json) console.log(JSON.stringify(q));
        else if (!o.wait)
          console.log(
            `${q.jobs} jobs enqueued (${q.resumed} clips done before); start \`vtok worker --queue …\` on each machine`,
          );
        else {
          for (const f of q.failed ?? []) console.error(`failed for good: ${f.file}: ${f.reason}`);
          console.log(
            `${q.clips} clips in ${q.shards} shards (${q.skipped} skipped; ${q.resumed} done ` +
              `before this run), ${q.jobs} jobs in ${q.seconds.toFixed(1)} s → ${q.index}`,
          );
        }
        if (q.failed?.length)
          throw new VtokError(
            `${q.failed.length} of ${q.jobs} jobs failed for good (reasons above); run the same command to retry them`,
          );
        return;
      }
      const s = await tokenizeCorpus({ ...run, workers: o.workers });
      if (o.json) console.log(JSON.stringify(s));
      else {
        console.log(
          `${s.clips} clips in ${s.shards} shards (${s.skipped} skipped; ` +
            `${s.resumed} done before this run), ${s.clipsPerSecond.toFixed(2)} clips/s → ${s.index}`,
        );
      }
    });
}
