import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CAPTIONED_MNIST_CLASSES, captionedMnistClass, type Axis } from '../data/captioned-mnist.js';
import { SeededRng, hashSeed } from '../data/seeded.js';
import { crc32 } from '../io/crc32.js';
import { packIds, unpackIds, vocabBits } from '../io/tokenfile.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError, check } from '../util/errors.js';
import type { TokenizerIdentity } from '../tokenizers/identity.js';

/**
 * Sharded token files: a tokenized corpus the LM trains from without running the tokenizer (DESIGN: data path).
 *
 * A shard (`shard-NNNNNNNN.vtks`) holds a batch of clips and is written atomically, so a shard on disk is always
 * whole; the shards are the record of what is done. Layout:
 *
 *   "VTKS" | u32 version | u32 header bytes | header JSON | ids bit-packed at log2(vocab) bits, clip after clip
 *     | u32 CRC-32 of all before
 *
 * The header lists each clip's source id, token grid, caption and labels, and the sources that were skipped with
 * the reason (unreadable or empty videos), so they too count as done. `index.json` beside the shards summarises
 * them (tokenizer identity, every clip and skipped source with its shard); it is rebuilt from the shards, so a
 * run killed between a shard and its index update loses nothing.
 */

export const SHARD_VERSION = 1;
const MAGIC = 'VTKS';
export const INDEX_FILE = 'index.json';
/** Held by the run writing a shard folder (src/util/lock.ts). */
export const LOCK_FILE = 'tokenize.lock';

export interface ShardClip {
  /** Where the clip came from (dataset:split:seed:index, or a file path): unique within a corpus. */
  source: string;
  ids: Int32Array;
  grid: number[];
  caption?: string;
  labels?: Record<string, unknown>;
}

export interface SkippedSource {
  source: string;
  reason: string;
}

interface ShardHeader {
  vocabSize: number;
  bits: number;
  clips: { source: string; grid: number[]; caption?: string; labels?: Record<string, unknown> }[];
  skipped: SkippedSource[];
}

export function writeShard(path: string, vocabSize: number, clips: ShardClip[], skipped: SkippedSource[] = []): void {
  const bits = vocabBits(vocabSize);
  const packed = clips.map((c) => {
    check(
      c.ids.length === c.grid.reduce((a, b) => a * b, 1),
      () => `clip ${c.source}: ${c.ids.length} ids for grid [${c.grid}]`,
    );
    return packIds(c.ids, bits, vocabSize);
  });
  const header: ShardHeader = {
    vocabSize,
    bits,
    clips: clips.map(({ source, grid, caption, labels }) => ({
      source,
      grid,
      ...(caption !== undefined ? { caption } : {}),
      ...(labels ? { labels } : {}),
    })),
    skipped,
  };
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(12);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(SHARD_VERSION, 4);
  head.writeUInt32LE(json.length, 8);
  let crc = crc32(json, crc32(head));
  for (const p of packed) crc = crc32(p, crc);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(crc, 0);
  writeFileAtomic(path, [head, json, ...packed, tail]);
}

export function readShard(path: string): { clips: ShardClip[]; skipped: SkippedSource[]; vocabSize: number } {
  if (!existsSync(path)) throw new VtokError('no such shard', path);
  const buf = readFileSync(path);
  check(buf.length >= 16 && buf.toString('latin1', 0, 4) === MAGIC, 'not a vtok token shard', path);
  const version = buf.readUInt32LE(4);
  check(version === SHARD_VERSION, `shard version ${version}, this vtok reads ${SHARD_VERSION}`, path);
  const hlen = buf.readUInt32LE(8);
  check(12 + hlen + 4 <= buf.length, 'truncated shard', path);
  check(
    crc32(buf.subarray(0, buf.length - 4)) === buf.readUInt32LE(buf.length - 4),
    'shard checksum mismatch (damaged file)',
    path,
  );
  let h: ShardHeader;
  try {
    h = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  } catch {
    throw new VtokError('shard header is not valid JSON', path);
  }
  let off = 12 + hlen;
  const clips = h.clips.map((c) => {
    const n = c.grid.reduce((a, b) => a * b, 1);
    const bytes = Math.ceil((n * h.bits) / 8);
    check(off + bytes <= buf.length - 4, 'truncated shard', path);
    const ids = unpackIds(new Uint8Array(buf.buffer, buf.byteOffset + off, bytes), n, h.bits);
    off += bytes;
    return { ...c, ids };
  });
  check(off === buf.length - 4, 'shard has trailing bytes', path);
  return { clips, skipped: h.skipped, vocabSize: h.vocabSize };
}

export const shardName = (ordinal: number): string => `shard-${String(ordinal).padStart(8, '0')}.vtks`;

/** What a corpus was tokenized with; a re-run into the same folder must match it. */
export interface CorpusInfo {
  tokenizer: TokenizerIdentity;
  /** Frames per clip, frame size and channels fed to the tokenizer. */
  clipFrames: number;
  size: number;
  channels: number;
  /** The corpus description (data set and options, or the input folder/list). */
  corpus: string;
  /** Clips per shard: a resumed run cuts the rest the same way (absent in folders of older versions). */
  shardSize?: number;
  /** Class names, where clips carry class labels (`labels.class` is an index into them). */
  classes?: string[];
}

export interface ShardIndex extends CorpusInfo {
  version: number;
  shards: { file: string; clips: number; skipped: number }[];
  clips: {
    source: string;
    shard: string;
    index: number;
    grid: number[];
    caption?: string;
    labels?: Record<string, unknown>;
  }[];
  skipped: (SkippedSource & { shard: string })[];
}

/** Shard files of a folder (complete ones only: temp files of a killed writer are not shards). */
export function listShards(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^shard-\d+\.vtks$/.test(f))
    .sort();
}

/** The index's entry for clip `i` of shard `file`. */
export function indexEntry(file: string, c: Omit<ShardClip, 'ids'>, i: number): ShardIndex['clips'][number] {
  return {
    source: c.source,
    shard: file,
    index: i,
    grid: c.grid,
    ...(c.caption !== undefined ? { caption: c.caption } : {}),
    ...(c.labels ? { labels: c.labels } : {}),
  };
}

/**
 * Class labels that older versions did not write: a captioned Moving MNIST corpus tokenized before clips carried
 * `labels.class` gets the class names, and each one-digit clip its class from the digits and axes its labels hold.
 */
function withClassLabels(index: ShardIndex): ShardIndex {
  let kind: unknown;
  try {
    kind = JSON.parse(index.corpus)?.kind;
  } catch {
    return index;
  }
  if (kind !== 'captioned-mnist') return index;
  index.classes ??= [...CAPTIONED_MNIST_CLASSES];
  for (const c of index.clips) {
    const l = c.labels;
    if (!l || l.class !== undefined || !Array.isArray(l.digits) || !Array.isArray(l.axes)) continue;
    const k = captionedMnistClass(l.digits as number[], l.axes as Axis[]);
    if (k !== undefined) c.labels = { ...l, class: k };
  }
  return index;
}

/** Rebuilds the index from the shards on disk (refusing a source that appears twice). */
export function buildIndex(dir: string, info: CorpusInfo): ShardIndex {
  const index: ShardIndex = { version: SHARD_VERSION, ...info, shards: [], clips: [], skipped: [] };
  const seen = new Set<string>();
  for (const file of listShards(dir)) {
    const { clips, skipped } = readShard(join(dir, file));
    index.shards.push({ file, clips: clips.length, skipped: skipped.length });
    clips.forEach((c, i) => {
      check(!seen.has(c.source), `source ${c.source} is in two shards`, join(dir, file));
      seen.add(c.source);
      index.clips.push(indexEntry(file, c, i));
    });
    for (const s of skipped) {
      check(!seen.has(s.source), `source ${s.source} is in two shards`, join(dir, file));
      seen.add(s.source);
      index.skipped.push({ ...s, shard: file });
    }
  }
  return withClassLabels(index);
}

export function writeIndex(dir: string, index: ShardIndex): void {
  writeFileAtomic(join(dir, INDEX_FILE), JSON.stringify(index));
}

export function readIndex(dir: string): ShardIndex {
  const path = join(dir, INDEX_FILE);
  if (!existsSync(path)) throw new VtokError(`no ${INDEX_FILE}: not a token shard folder (vtok tokenize … --out)`, dir);
  let j: ShardIndex;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new VtokError('not valid JSON', path);
  }
  check(
    j && j.version === SHARD_VERSION && Array.isArray(j.clips) && Array.isArray(j.shards) && j.tokenizer,
    'not a token shard index',
    path,
  );
  return withClassLabels(j);
}

/** A clip of the index, by position. */
export type ClipRef = ShardIndex['clips'][number];

/**
 * Reads a shard folder for training: clips shard by shard (one shard in memory at a time), and the clips grouped
 * by sequence length (AGD, VideoPoet §4.2: one length group per step, no padding) from the index alone.
 */
export class ShardReader {
  readonly index: ShardIndex;

  constructor(readonly dir: string) {
    this.index = readIndex(dir);
  }

  *clips(): Generator<ShardClip> {
    for (const s of this.index.shards) yield* readShard(join(this.dir, s.file)).clips;
  }

  /**
   * Clips by the length `lengthOf` gives each (e.g. the task's sequence length for its grid and caption); a clip it
   * gives no length is left out.
   */
  groupByLength(lengthOf: (clip: ClipRef) => number | undefined): Map<number, ClipRef[]> {
    const groups = new Map<number, ClipRef[]>();
    for (const c of this.index.clips) {
      const n = lengthOf(c);
      if (n === undefined) continue;
      const g = groups.get(n);
      if (g) g.push(c);
      else groups.set(n, [c]);
    }
    return groups;
  }

  /**
   * Training batches, each from one length group (AGD): per epoch every group is shuffled and cut into batches of
   * up to `batchSize`, and the batches of all groups are shuffled together, so groups are visited in proportion to
   * their size. The order is a pure function of (seed, epoch): a resumed run skips `startBatch` batches.
   */
  *lengthBatches(o: {
    lengthOf: (clip: ClipRef) => number | undefined;
    batchSize: number;
    seed?: number;
    epochs?: number;
    startBatch?: number;
  }): Generator<{ length: number; clips: ClipRef[]; epoch: number }> {
    check(
      Number.isInteger(o.batchSize) && o.batchSize > 0,
      `batch size must be a positive integer, got ${o.batchSize}`,
    );
    const groups = [...this.groupByLength(o.lengthOf)].sort((a, b) => a[0] - b[0]);
    let skip = o.startBatch ?? 0;
    for (let epoch = 0; epoch < (o.epochs ?? 1); epoch++) {
      const batches: { length: number; clips: ClipRef[]; epoch: number }[] = [];
      groups.forEach(([length, refs], g) => {
        const order = new SeededRng(hashSeed(o.seed ?? 0, epoch, g, 0xa9d)).permutation(refs.length);
        for (let k = 0; k < refs.length; k += o.batchSize)
          batches.push({ length, clips: Array.from(order.subarray(k, k + o.batchSize), (i) => refs[i]!), epoch });
      });
      const mix = new SeededRng(hashSeed(o.seed ?? 0, epoch, 0xa9d)).permutation(batches.length);
      for (const i of mix) {
        if (skip > 0) {
          skip--;
          continue;
        }
        yield batches[i]!;
      }
    }
  }

  private cache: { file: string; clips: ShardClip[] } | undefined;

  /** The ids of some clips (reading each shard once per call, in order of the shards). */
  read(refs: ClipRef[]): ShardClip[] {
    const out = new Array<ShardClip>(refs.length);
    const byShard = new Map<string, number[]>();
    refs.forEach((r, i) => {
      const l = byShard.get(r.shard);
      if (l) l.push(i);
      else byShard.set(r.shard, [i]);
    });
    for (const [file, idx] of byShard) {
      if (this.cache?.file !== file) this.cache = { file, clips: readShard(join(this.dir, file)).clips };
      for (const i of idx) {
        const c = this.cache.clips[refs[i]!.index];
        check(
          c && c.source === refs[i]!.source,
          `index and shard disagree about clip ${refs[i]!.source}`,
          join(this.dir, file),
        );
        out[i] = c;
      }
    }
    return out;
  }
}
