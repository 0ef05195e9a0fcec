import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as E from '../engine/core.js';
import { CAPTIONED_MNIST_CLASSES, CaptionedMovingMnist } from '../data/captioned-mnist.js';
import { CaptionedSynthetic } from '../data/captioned-synthetic.js';
import type { CaptionedClip, CaptionedDataset, CaptionedSplit } from '../data/captioned-mnist.js';
import { fitChannels } from '../io/clip.js';
import type { Frame } from '../io/frame.js';
import { readClip } from '../io/video.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { VtokError, check } from '../util/errors.js';
import { exitCodeFor } from '../util/interrupt.js';
import { acquireLock } from '../util/lock.js';
import { progress } from '../util/progress.js';
import { removeStaleTemps } from '../util/atomic.js';
import {
  INDEX_FILE,
  LOCK_FILE,
  SHARD_VERSION,
  buildIndex,
  indexEntry,
  readIndex,
  shardName,
  writeIndex,
  writeShard,
  type CorpusInfo,
  type ShardClip,
  type ShardIndex,
  type SkippedSource,
} from './shards.js';
import { tokenizerIdentity } from '../tokenizers/identity.js';

/**
 * `vtok tokenize` as a library: a corpus (a captioned data set, or video files with sidecar captions) goes
 * through a trained tokenizer into token shards, on parallel worker threads (each with its own copy of the
 * tokenizer). Work is cut into shards of `shardSize` clips; a worker writes each shard atomically, so a killed run
 * keeps every shard it finished, and a re-run tokenizes only the sources no shard holds yet. Unreadable or empty
 * videos are recorded as skipped, with the reason, instead of stopping the run; a run that tokenizes no clip at all
 * fails and leaves nothing behind. One run at a time writes into a folder (a lock file holds its pid).
 */
export type CorpusSpec =
  | {
      kind: 'captioned-mnist';
      split: CaptionedSplit;
      seed: number;
      clips: number;
      frames?: number;
      digits?: 1 | 2 | 'mixed';
    }
  | { kind: 'captioned-synthetic'; seed: number; clips: number; frames?: number; size?: number }
  | {
      kind: 'files';
      name: string;
      /** `label`: a class label, an index into `classes`. */
      items: { path: string; caption?: string; label?: number }[];
      classes?: string[];
    };

export interface TokenizeOptions {
  corpus: CorpusSpec;
  /** Tokenizer run directory. */
  model: string;
  out: string;
  /** Worker threads (default: cores; 0 = tokenize on the calling thread). */
  workers?: number;
  /** Clips per shard (default 64). */
  shardSize?: number;
  /** Frame size for video files (resize + center crop; default: the tokenizer's training size). */
  size?: number;
  /** Convert colour clips for a gray model (without it they are refused: fitChannels). */
  gray?: boolean;
  quiet?: boolean;
}

export interface TokenizeSummary {
  clips: number;
  skipped: number;
  shards: number;
  /** Sources already done before this run. */
  resumed: number;
  /** Sources tokenized (or skipped) by this run. */
  processed: number;
  seconds: number;
  clipsPerSecond: number;
  index: string;
}

/** The source id of each item, in corpus order (unique). */
export function corpusSources(spec: CorpusSpec): string[] {
  if (spec.kind === 'files') return spec.items.map((it) => resolve(it.path));
  const tag = spec.kind === 'captioned-mnist' ? `${spec.kind}:${spec.split}:${spec.seed}` : `${spec.kind}:${spec.seed}`;
  return Array.from({ length: spec.clips }, (_, i) => `${tag}:${i}`);
}

/** Class names of a corpus whose clips carry class labels (`labels.class` indexes them). */
function corpusClasses(spec: CorpusSpec): string[] | undefined {
  if (spec.kind === 'captioned-mnist') return [...CAPTIONED_MNIST_CLASSES];
  if (spec.kind === 'files' && spec.items.some((it) => it.label !== undefined)) {
    check(spec.classes !== undefined, 'labelled items need the class names');
    return spec.classes;
  }
  return undefined;
}

/** What identifies the corpus for resuming (the clip count may grow between runs). */
function describeCorpus(spec: CorpusSpec): string {
  if (spec.kind === 'files') return `files:${spec.name}`;
  const { clips: _clips, ...rest } = spec;
  return JSON.stringify(rest);
}

function trainingSize(runDir: string): number | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).data?.size;
  } catch {
    return undefined;
  }
}

export interface WorkerInit {
  model: string;
  corpus: CorpusSpec;
  out: string;
  size: number;
  threads: number;
  gray?: boolean;
}

/** One worker's state: its tokenizer and its view of the corpus. */
export class ChunkTokenizer {
  private readonly tok: Tokenizer;
  private readonly dataset?: CaptionedDataset;
  private readonly sources: string[];
  readonly channels: number;

  /** `tokenizer`: one already loaded from `init.model`, shared by several corpora (the queue worker's jobs). */
  constructor(
    readonly init: WorkerInit,
    tokenizer?: Tokenizer,
  ) {
    E.setRuntimeDefaults({ threads: init.threads });
    this.tok = tokenizer ?? loadTokenizer(init.model).tokenizer;
    this.channels = this.tok.channels ?? 3;
    const c = init.corpus;
    if (c.kind === 'captioned-mnist')
      this.dataset = new CaptionedMovingMnist({
        split: c.split,
        seed: c.seed,
        length: c.clips,
        frames: c.frames ?? this.tok.clipFrames,
        digits: c.digits,
        channels: this.channels === 1 ? 1 : 3,
      });
    else if (c.kind === 'captioned-synthetic')
      this.dataset = new CaptionedSynthetic({
        seed: c.seed,
        length: c.clips,
        frames: c.frames ?? this.tok.clipFrames,
        height: c.size ?? init.size,
        width: c.size ?? init.size,
      });
    this.sources = corpusSources(c);
  }

  /** Tokenizes the corpus items `ordinals` into one shard; returns what it holds. */
  async run(ordinals: number[], file: string): Promise<{ clips: Omit<ShardClip, 'ids'>[]; skipped: SkippedSource[] }> {
    const clips: ShardClip[] = [];
    const skipped: SkippedSource[] = [];
    for (const i of ordinals) {
      // a turn of the event loop per clip: on the calling thread (--workers 0), Ctrl-C is handled between clips
      await new Promise<void>((r) => setImmediate(r));
      const source = this.sources[i]!;
      let clip: {
        data: Uint8Array;
        channels: number;
        frames: number;
        height: number;
        width: number;
        caption?: string;
        labels?: Record<string, unknown>;
      };
      if (this.dataset) {
        const c = (await this.dataset.get(i)) as CaptionedClip;
        const s = this.dataset.shape;
        clip = {
          data: c.data,
          channels: s.channels,
          frames: s.frames,
          height: s.height,
          width: s.width,
          caption: c.caption,
          labels: c.labels,
        };
      } else {
        const item = (this.init.corpus as Extract<CorpusSpec, { kind: 'files' }>).items[i]!;
        let frames: Frame[];
        try {
          frames = await readClip(item.path, this.tok.clipFrames, {
            size: this.init.size,
            crop: this.init.size,
            pad: true,
          });
        } catch (e) {
          // a bad file in a corpus is recorded and skipped, never fatal to the run
          skipped.push({ source, reason: (e as Error).message.replace(`${item.path}: `, '') });
          continue;
        }
        const f0 = frames[0]!;
        const data = new Uint8Array(frames.length * f0.width * f0.height * 3);
        frames.forEach((f, t) => {
          data.set(f.data, t * f.data.length);
        });
        clip = { data, channels: 3, frames: frames.length, height: f0.height, width: f0.width, caption: item.caption };
        if (item.label !== undefined) clip.labels = { class: item.label };
      }
      const ids = this.tok.encode(toTensor(clip, this.channels, this.init.gray, source));
      const values = E.toArray(ids) as number[];
      clips.push({
        source,
        ids: Int32Array.from(values),
        grid: ids.shape.slice(1),
        ...(clip.caption !== undefined ? { caption: clip.caption } : {}),
        ...(clip.labels ? { labels: clip.labels } : {}),
      });
    }
    writeShard(join(this.init.out, file), this.tok.vocabSize, clips, skipped);
    return { clips: clips.map(({ ids: _ids, ...rest }) => rest), skipped };
  }
}

/**
 * uint8 T×H×W×C → 1×C'×T×H×W in [-1, 1] with the tokenizer's channels, by the rule every command applies
 * (fitChannels): colour for a gray model only with `gray`.
 */
function toTensor(
  c: { data: Uint8Array; channels: number; frames: number; height: number; width: number },
  channels: number,
  gray: boolean | undefined,
  source: string,
): E.Tensor {
  const plane = c.frames * c.height * c.width;
  const data = new Float32Array(c.channels * plane);
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < c.channels; k++) data[k * plane + p] = c.data[p * c.channels + k]! / 127.5 - 1;
  }
  const fit = fitChannels(data, [1, c.channels, c.frames, c.height, c.width], channels, gray, source);
  return E.concrete(fit.data, [...fit.shape], 'float32');
}

/** A corpus ready to tokenize into `out`: what is done there, and the chunks of what is not (one shard each). */
export interface PreparedCorpus {
  corpus: CorpusSpec;
  info: CorpusInfo;
  size: number;
  shardSize: number;
  index: ShardIndex;
  done: Set<string>;
  chunks: { ordinals: number[]; file: string }[];
  /** Set once what the folder holds must stay (queued jobs write there); until then a run of no clip undoes itself. */
  keep: boolean;
  /**
   * Ends this run's hold on `out` (once; also on Ctrl-C/SIGTERM, which then end the process): when the folder holds
   * no clip and not `keep`, removes what this run wrote (its shards, a new index, a new folder); releases the lock.
   */
  close(): void;
}

/**
 * Checks `out` against the corpus and tokenizer (a folder of another corpus, tokenizer or shard size is refused)
 * before writing anything, takes the folder's lock, rebuilds its index from the shards there, and cuts the sources
 * no shard holds into chunks of `shardSize` (by default the folder's own). Shared by the local run and the queue's
 * enqueuer; the caller must `close()` the result.
 */
export function prepareCorpus(
  o: Pick<TokenizeOptions, 'corpus' | 'model' | 'out' | 'shardSize' | 'size'>,
): PreparedCorpus {
  const { tokenizer, module } = loadTokenizer(o.model);
  const size = o.size ?? trainingSize(o.model) ?? 64;
  // defaults made explicit, so that a re-run naming them describes the same corpus
  const corpus: CorpusSpec =
    o.corpus.kind === 'files'
      ? o.corpus
      : o.corpus.kind === 'captioned-mnist'
        ? { ...o.corpus, frames: o.corpus.frames ?? tokenizer.clipFrames, digits: o.corpus.digits ?? 'mixed' }
        : { ...o.corpus, frames: o.corpus.frames ?? tokenizer.clipFrames, size: o.corpus.size ?? size };
  const hadIndex = existsSync(join(o.out, INDEX_FILE));
  const prev = hadIndex ? readIndex(o.out) : undefined;
  const shardSize = o.shardSize ?? prev?.shardSize ?? 64;
  check(Number.isInteger(shardSize) && shardSize > 0, `shard size must be a positive integer, got ${shardSize}`);
  const classes = corpusClasses(corpus);
  const info: CorpusInfo = {
    tokenizer: tokenizerIdentity(tokenizer, module.stateDict()),
    clipFrames: tokenizer.clipFrames,
    size,
    channels: tokenizer.channels ?? 3,
    corpus: describeCorpus(corpus),
    shardSize,
    ...(classes ? { classes } : {}),
  };
  if (prev) {
    if (prev.tokenizer.identity !== info.tokenizer.identity) {
      throw new VtokError(
        `these shards were made with tokenizer ${prev.tokenizer.kind} ${prev.tokenizer.identity.slice(0, 16)}, ` +
          `not ${info.tokenizer.kind} ${info.tokenizer.identity.slice(0, 16)} (${o.model}): use another --out`,
        o.out,
      );
    }
    check(
      prev.corpus === info.corpus && prev.size === info.size && prev.clipFrames === info.clipFrames,
      `these shards hold another corpus (${prev.corpus}, ${prev.size} px), ` +
        `not ${info.corpus} (${info.size} px): use another --out`,
      o.out,
    );
    check(
      JSON.stringify(prev.classes ?? null) === JSON.stringify(info.classes ?? null),
      `these shards hold other class labels (${prev.classes?.join(', ') ?? 'none'}) than the corpus ` +
        `(${info.classes?.join(', ') ?? 'none'}): use another --out`,
      o.out,
    );
    // a resumed run cuts the rest of the corpus as the first did, so that one shard size describes the folder
    const was = prev.shardSize;
    if (was !== undefined && was !== shardSize) {
      const how = `resume with --shard-size ${was} (or without it), or use another --out`;
      throw new VtokError(`these shards were cut with --shard-size ${was}, not ${shardSize}: ${how}`, o.out);
    }
  }
  const sources = corpusSources(corpus);
  check(new Set(sources).size === sources.length, 'the corpus lists a source twice');

  const created = !existsSync(o.out);
  mkdirSync(o.out, { recursive: true });
  let index: ShardIndex = { version: SHARD_VERSION, ...info, shards: [], clips: [], skipped: [] };
  const chunks: { ordinals: number[]; file: string }[] = [];
  let release: (() => void) | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // without the lock, the folder is another run's (or was never this one's to change)
    if (!release) return;
    try {
      if (!p.keep && index.clips.length === 0) {
        for (const c of chunks) rmSync(join(o.out, c.file), { force: true });
        if (created) rmSync(o.out, { recursive: true, force: true });
        else if (!hadIndex) rmSync(join(o.out, INDEX_FILE), { force: true });
        else writeIndex(o.out, buildIndex(o.out, info));
      }
    } finally {
      release();
    }
  };
  const onSignal = (s: NodeJS.Signals) => {
    const kept = p.keep || index.clips.length > 0;
    const what = kept ? `the shards written are kept in ${o.out}: run the same command to resume` : 'nothing written';
    process.stderr.write(`\n${s === 'SIGINT' ? 'Ctrl-C' : s}: stopped; ${what}\n`);
    close();
    process.exit(exitCodeFor(s));
  };
  // listening before the lock exists, so that no signal can leave it behind
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const p: PreparedCorpus = { corpus, info, size, shardSize, index, done: new Set(), chunks, keep: false, close };
  try {
    release = acquireLock(join(o.out, LOCK_FILE), 'vtok tokenize', o.out);
    removeStaleTemps(o.out);
    index = p.index = buildIndex(o.out, info);
    writeIndex(o.out, index);
  } catch (e) {
    close();
    throw e;
  }
  p.done = new Set([...index.clips.map((c) => c.source), ...index.skipped.map((s) => s.source)]);
  const pending = sources.map((_, i) => i).filter((i) => !p.done.has(sources[i]!));
  for (let k = 0; k < pending.length; k += shardSize) {
    const ordinals = pending.slice(k, k + shardSize);
    // named by its first clip's ordinal: that clip was not done, so no shard on disk has this name
    chunks.push({ ordinals, file: shardName(ordinals[0]!) });
  }
  return p;
}

/** The error of a run that tokenized no clip: every source was skipped (the reasons were reported one by one). */
export function noClipError(index: ShardIndex): VtokError {
  const first = index.skipped[0];
  if (!first) return new VtokError('the corpus holds no clip to tokenize');
  if (index.skipped.length === 1) return new VtokError(`${first.source}: ${first.reason}; nothing was tokenized`);
  const n = index.skipped.length;
  return new VtokError(`none of the ${n} clips could be tokenized (the first: ${first.source}: ${first.reason})`);
}

export async function tokenizeCorpus(o: TokenizeOptions): Promise<TokenizeSummary> {
  const t0 = Date.now();
  const p = prepareCorpus(o);
  const { corpus, size, index, done, chunks } = p;
  try {
    const pending = chunks.flatMap((c) => c.ordinals);
    const bar = progress('tokenize', pending.length, { quiet: o.quiet });
    let processed = 0;
    const record = (file: string, r: { clips: Omit<ShardClip, 'ids'>[]; skipped: SkippedSource[] }) => {
      index.shards.push({ file, clips: r.clips.length, skipped: r.skipped.length });
      index.shards.sort((a, b) => a.file.localeCompare(b.file));
      r.clips.forEach((c, i) => {
        index.clips.push(indexEntry(file, c, i));
      });
      for (const s of r.skipped) {
        index.skipped.push({ ...s, shard: file });
        if (!o.quiet) process.stderr.write(`skipped ${s.source}: ${s.reason}\n`);
      }
      writeIndex(o.out, index);
      processed += r.clips.length + r.skipped.length;
      bar.update(processed, { skipped: index.skipped.length });
    };
    const cores = availableParallelism();
    const workers = Math.min(o.workers ?? cores, chunks.length);
    // the cores are shared among the workers' onnxruntime sessions
    const threads = Math.max(1, Math.floor((Number(process.env.VTOK_THREADS) || cores) / Math.max(1, workers)));
    const init: WorkerInit = { model: o.model, corpus, out: o.out, size, threads, gray: o.gray };
    try {
      if (workers <= 0) {
        const t = new ChunkTokenizer(init);
        for (const c of chunks) record(c.file, await t.run(c.ordinals, c.file));
      } else {
        await runWorkers(init, chunks, workers, record);
      }
    } finally {
      bar.stop();
    }
    if (index.clips.length === 0) throw noClipError(index);
    const seconds = (Date.now() - t0) / 1000;
    return {
      clips: index.clips.length,
      skipped: index.skipped.length,
      shards: index.shards.length,
      resumed: done.size,
      processed,
      seconds,
      clipsPerSecond: processed / Math.max(1e-3, seconds),
      index: join(o.out, INDEX_FILE),
    };
  } finally {
    p.close();
  }
}

type WorkerReply =
  | { ready: true }
  | { file: string; clips: Omit<ShardClip, 'ids'>[]; skipped: SkippedSource[] }
  | { error: string; vtok: boolean };

function runWorkers(
  init: WorkerInit,
  chunks: { ordinals: number[]; file: string }[],
  n: number,
  record: (file: string, r: { clips: Omit<ShardClip, 'ids'>[]; skipped: SkippedSource[] }) => void,
): Promise<void> {
  return new Promise((resolveAll, reject) => {
    let next = 0;
    let live = n;
    let failed = false;
    const pool: Worker[] = [];
    // every worker has stopped before the caller hears of a failure, so none writes a shard after it cleaned up
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      void Promise.allSettled(pool.map((w) => w.terminate())).then(() => reject(e));
    };
    for (let k = 0; k < n; k++) {
      const w = new Worker(new URL('./tokenize-worker.js', import.meta.url), { workerData: init });
      pool.push(w);
      let finished = false;
      const give = () => {
        if (next < chunks.length) w.postMessage(chunks[next++]);
        else {
          finished = true;
          void w.terminate();
          if (--live === 0 && !failed) resolveAll();
        }
      };
      w.on('exit', (code) => {
        if (!finished) fail(new Error(`a tokenize worker stopped unexpectedly (exit code ${code})`));
      });
      w.on('message', (m: WorkerReply) => {
        if (failed) return;
        if ('ready' in m) return give();
        if ('error' in m) return fail(m.vtok ? new VtokError(m.error) : new Error(m.error));
        record(m.file, m);
        give();
      });
      w.on('error', fail);
    }
  });
}
