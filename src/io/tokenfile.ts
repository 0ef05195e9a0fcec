import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { VtokError, check } from '../util/errors.js';
import { canonicalJson } from '../util/json.js';
import { crc32 } from './crc32.js';

/**
 * The .vtok token file: what a tokenizer turned one or more clips into, losslessly.
 *
 * Layout (little-endian), version 2:
 *   header  'VTOK' u16 version u8 vocabBits u8 reserved u32 vocabSize  str modality  str kind  str configHash
 *           u8 ndim u32[ndim] grid  u32 len json-source  u32 len json-extra  u32 crc32(all before)
 *   clip*   'CLIP' u8 ndim u32[ndim] grid  u32 packedBytes  packed ids  u32 crc32(record from 'CLIP')
 *   end     'END!' u32 clipCount u32 crc32('END!' + count)
 * where str = u16 length + UTF-8, and ids are bit-packed LSB-first at vocabBits = ceil(log2 vocabSize) bits.
 * The end record makes a file cut at a clip boundary detectably truncated. The source record is JSON so that each
 * modality keeps its own fields (frame rate and size for video, sample rate for audio, none for an LM's sequences).
 * Version 1 (video only) had f64 fps u32 sourceH u32 sourceW after vocabSize and no modality or source record;
 * it still reads, as modality 'video' with that source.
 */

export const TOKEN_FILE_VERSION = 2;
const MAGIC = 'VTOK';
const CLIP_TAG = 'CLIP';
const END_TAG = 'END!';

/** What the tokens stand for: a tokenizer's input modality, or 'sequence' for an LM's mixed token sequences. */
export type TokenModality = 'video' | 'image' | 'audio' | 'sequence';

/**
 * Where the tokens came from, per modality: video needs fps and frameSize, image frameSize, audio sampleRate
 * (channels optional); a sequence needs nothing. Other fields may be added and are kept.
 */
export interface TokenSource {
  /** Frames per second of the source video (0 when unknown). */
  fps?: number;
  /** Source frame size [height, width]. */
  frameSize?: [number, number];
  /** Samples per second of the source audio. */
  sampleRate?: number;
  /** Audio channels of the source. */
  channels?: number;
  [key: string]: unknown;
}

export interface TokenFileHeader {
  modality: TokenModality;
  /** Tokenizer (or model) kind, e.g. 'magvit2' or 'larp'. */
  kind: string;
  /** Hash of the tokenizer config (see hashConfig): tokens are only meaningful to the same config. */
  configHash: string;
  vocabSize: number;
  /** Token grid of a clip, e.g. [t, h, w] for MAGVIT-v2 or [n] for LARP; clips may override it. */
  grid: number[];
  source: TokenSource;
  /** Anything else the writer wants to keep (JSON). */
  extra?: Record<string, unknown>;
}

export interface TokenClip {
  grid: number[];
  ids: Int32Array;
}

/** Bits per id: ceil(log2 vocabSize), at least 1. */
export function vocabBits(vocabSize: number): number {
  return Math.max(1, Math.ceil(Math.log2(vocabSize)));
}

/** A short stable hash of a config object (keys sorted), for the header's configHash. */
export function hashConfig(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

// ---- bit packing ----

/** Packs ids at `bits` bits each, LSB-first. */
export function packIds(ids: ArrayLike<number>, bits: number, vocabSize = 2 ** bits): Uint8Array {
  check(bits >= 1 && bits <= 31, `vocabulary bits must be 1..31, got ${bits}`);
  const out = new Uint8Array(Math.ceil((ids.length * bits) / 8));
  let pos = 0;
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!(Number.isInteger(v) && v >= 0 && v < vocabSize))
      throw new VtokError(`token ${i} is ${v}, outside the vocabulary [0, ${vocabSize})`);
    let rem = bits;
    let x = v;
    while (rem > 0) {
      const byte = pos >>> 3;
      const shift = pos & 7;
      const take = Math.min(8 - shift, rem);
      out[byte]! |= (x & ((1 << take) - 1)) << shift;
      x = Math.floor(x / (1 << take));
      rem -= take;
      pos += take;
    }
  }
  return out;
}

export function unpackIds(packed: Uint8Array, count: number, bits: number): Int32Array {
  const out = new Int32Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    let v = 0;
    let got = 0;
    while (got < bits) {
      const shift = pos & 7;
      const take = Math.min(8 - shift, bits - got);
      v += ((packed[pos >>> 3]! >>> shift) & ((1 << take) - 1)) * 2 ** got;
      got += take;
      pos += take;
    }
    out[i] = v;
  }
  return out;
}

// ---- encoding helpers ----

class Bytes {
  private parts: Buffer[] = [];
  u8(v: number) {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
    return this;
  }
  u16(v: number) {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  f64(v: number) {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.parts.push(b);
    return this;
  }
  raw(v: Uint8Array | string) {
    this.parts.push(typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    return this;
  }
  str(v: string) {
    const b = Buffer.from(v, 'utf8');
    check(b.length < 65536, 'string too long for a token file header');
    return this.u16(b.length).raw(b);
  }
  grid(g: number[]) {
    check(g.length > 0 && g.length < 256, `token grid must have 1..255 dims, got ${g.length}`);
    this.u8(g.length);
    for (const d of g) this.u32(d);
    return this;
  }
  withCrc(): Buffer {
    const body = Buffer.concat(this.parts);
    const c = Buffer.alloc(4);
    c.writeUInt32LE(crc32(body));
    return Buffer.concat([body, c]);
  }
}

function gridSize(grid: number[], file?: string): number {
  let n = 1;
  for (const d of grid) {
    check(Number.isInteger(d) && d > 0, `token grid [${grid.join(', ')}] must have positive integer dims`, file);
    n *= d;
  }
  return n;
}

function validateHeader(h: TokenFileHeader, file?: string): void {
  check(typeof h.kind === 'string' && h.kind.length > 0, 'header.kind must be a non-empty string', file);
  check(typeof h.configHash === 'string', 'header.configHash must be a string', file);
  check(
    Number.isInteger(h.vocabSize) && h.vocabSize >= 2 && h.vocabSize <= 2 ** 31,
    `header.vocabSize must be an integer in [2, 2^31], got ${h.vocabSize}`,
    file,
  );
  gridSize(h.grid, file);
  check(
    MODALITIES.includes(h.modality),
    `header.modality must be one of ${MODALITIES.join(', ')}, got ${JSON.stringify(h.modality)}`,
    file,
  );
  check(
    !!h.source && typeof h.source === 'object' && !Array.isArray(h.source),
    'header.source must be an object',
    file,
  );
  const s = h.source;
  if (h.modality === 'video')
    check(
      Number.isFinite(s.fps) && s.fps! >= 0,
      `header.source.fps must be a non-negative number for video, got ${s.fps}`,
      file,
    );
  if (h.modality === 'video' || h.modality === 'image' || s.frameSize !== undefined) {
    check(
      Array.isArray(s.frameSize) && s.frameSize.length === 2 && s.frameSize.every((d) => Number.isInteger(d) && d >= 0),
      `header.source.frameSize must be [height, width] for ${h.modality}`,
      file,
    );
  }
  if (h.modality === 'audio' || s.sampleRate !== undefined) {
    check(
      Number.isFinite(s.sampleRate) && s.sampleRate! > 0,
      `header.source.sampleRate must be a positive number for ${h.modality}, got ${s.sampleRate}`,
      file,
    );
  }
  if (s.channels !== undefined)
    check(
      Number.isInteger(s.channels) && s.channels > 0,
      `header.source.channels must be a positive integer, got ${s.channels}`,
      file,
    );
}

const MODALITIES: TokenModality[] = ['video', 'image', 'audio', 'sequence'];

// ---- writer ----

/**
 * Streams clips into a .vtok file: each writeClip goes straight to disk (in a temp file beside the target);
 * close() writes the end record, fsyncs and renames, so the target only ever holds a complete file.
 */
export class TokenFileWriter {
  private fd: number;
  private tmp: string;
  private clips = 0;
  private bits: number;
  private done = false;

  constructor(
    readonly path: string,
    readonly header: TokenFileHeader,
  ) {
    validateHeader(header, path);
    this.bits = vocabBits(header.vocabSize);
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    this.fd = openSync(this.tmp, 'w');
    const source = JSON.stringify(header.source);
    const json = header.extra ? JSON.stringify(header.extra) : '';
    const b = new Bytes().raw(MAGIC).u16(TOKEN_FILE_VERSION).u8(this.bits).u8(0).u32(header.vocabSize);
    b.str(header.modality).str(header.kind).str(header.configHash).grid(header.grid);
    b.u32(Buffer.byteLength(source)).raw(source);
    this.write(b.u32(Buffer.byteLength(json)).raw(json).withCrc());
  }

  private write(buf: Uint8Array): void {
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Appends one clip's ids (row-major over `grid`, which defaults to the header's). */
  writeClip(ids: ArrayLike<number>, grid: number[] = this.header.grid): void {
    check(!this.done, 'token file already closed', this.path);
    const n = gridSize(grid, this.path);
    check(
      ids.length === n,
      `clip ${this.clips} has ${ids.length} ids, its grid [${grid.join(', ')}] needs ${n}`,
      this.path,
    );
    let packed: Uint8Array;
    try {
      packed = packIds(ids, this.bits, this.header.vocabSize);
    } catch (e) {
      this.abort();
      throw new VtokError(`clip ${this.clips}: ${(e as Error).message}`, this.path);
    }
    this.write(new Bytes().raw(CLIP_TAG).grid(grid).u32(packed.length).raw(packed).withCrc());
    this.clips++;
  }

  /** Finishes the file; returns the number of clips written. */
  close(): number {
    check(!this.done, 'token file already closed', this.path);
    this.write(new Bytes().raw(END_TAG).u32(this.clips).withCrc());
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.done = true;
    renameSync(this.tmp, this.path);
    return this.clips;
  }

  /** Drops the partial file (on error); the target is left as it was. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    rmSync(this.tmp, { force: true });
  }
}

/** Writes a whole token file in one call. */
export function writeTokenFile(
  path: string,
  header: TokenFileHeader,
  clips: Iterable<TokenClip | ArrayLike<number>>,
): number {
  const w = new TokenFileWriter(path, header);
  try {
    for (const c of clips) {
      if ('ids' in (c as TokenClip)) w.writeClip((c as TokenClip).ids, (c as TokenClip).grid);
      else w.writeClip(c as ArrayLike<number>);
    }
  } catch (e) {
    w.abort();
    throw e;
  }
  return w.close();
}

// ---- reader ----

/** Buffered sequential reads from a file handle; running out of bytes is a "truncated" error. */
class Reader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  offset = 0;
  constructor(
    private fh: FileHandle,
    private file: string,
  ) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length - this.pos < n && !this.eof) {
      const chunk = Buffer.alloc(Math.max(1 << 16, n));
      const { bytesRead } = await this.fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) this.eof = true;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk.subarray(0, bytesRead)]);
      this.pos = 0;
    }
  }

  async take(n: number, what: string): Promise<Buffer> {
    await this.fill(n);
    if (this.buf.length - this.pos < n)
      throw new VtokError(
        `truncated: file ends inside ${what} at byte ${this.offset + (this.buf.length - this.pos)}`,
        this.file,
      );
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buf.length - this.pos === 0;
  }
}

/** Collects the bytes of one record so its CRC can be checked. */
class RecordReader {
  parts: Buffer[] = [];
  constructor(
    private r: Reader,
    private what: string,
  ) {}
  async take(n: number): Promise<Buffer> {
    const b = Buffer.from(await this.r.take(n, this.what));
    this.parts.push(b);
    return b;
  }
  async u8() {
    return (await this.take(1)).readUInt8(0);
  }
  async u16() {
    return (await this.take(2)).readUInt16LE(0);
  }
  async u32() {
    return (await this.take(4)).readUInt32LE(0);
  }
  async f64() {
    return (await this.take(8)).readDoubleLE(0);
  }
  async str() {
    return (await this.take(await this.u16())).toString('utf8');
  }
  async grid(file: string) {
    const nd = await this.u8();
    check(nd > 0, `corrupt ${this.what}: token grid has 0 dims`, file);
    const g: number[] = [];
    for (let i = 0; i < nd; i++) g.push(await this.u32());
    return g;
  }
  async checkCrc(file: string): Promise<void> {
    const want = crc32(Buffer.concat(this.parts));
    const got = (await this.r.take(4, `the checksum of ${this.what}`)).readUInt32LE(0);
    if (got !== want)
      throw new VtokError(`corrupt ${this.what}: CRC32 mismatch (stored ${hex(got)}, computed ${hex(want)})`, file);
  }
}

const hex = (v: number) => v.toString(16).padStart(8, '0');

export interface TokenFileHandle {
  header: TokenFileHeader;
  /** Clips in order, read one at a time; verifies each clip's CRC and the end record. Single pass. */
  clips(): AsyncGenerator<TokenClip>;
  close(): Promise<void>;
}

/** Opens a .vtok file and reads its header; iterate clips() for the ids. */
export async function openTokenFile(path: string): Promise<TokenFileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new VtokError(`cannot open token file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  const r = new Reader(fh, path);
  let header: TokenFileHeader;
  let bits: number;
  try {
    if (await r.atEnd()) throw new VtokError('file is empty, expected a .vtok token file', path);
    const h = new RecordReader(r, 'header');
    const magic = (await h.take(4)).toString('latin1');
    if (magic !== MAGIC)
      throw new VtokError(`not a .vtok token file (magic ${JSON.stringify(magic)}, expected "VTOK")`, path);
    const version = await h.u16();
    if (version !== 1 && version !== 2)
      throw new VtokError(`token file version ${version} is not supported (this vtok reads versions 1 and 2)`, path);
    bits = await h.u8();
    await h.u8();
    const vocabSize = await h.u32();
    let modality: TokenModality = 'video';
    let source: TokenSource | undefined;
    if (version === 1) source = { fps: await h.f64(), frameSize: [await h.u32(), await h.u32()] };
    else modality = (await h.str()) as TokenModality;
    const kind = await h.str();
    const configHash = await h.str();
    const grid = await h.grid(path);
    const jsonOf = async (what: string) => {
      const len = await h.u32();
      check(len < 1 << 26, `corrupt header: ${what} JSON length ${len} is implausible`, path);
      const text = (await h.take(len)).toString('utf8');
      return {
        text,
        parse: () => {
          try {
            return JSON.parse(text) as Record<string, unknown>;
          } catch {
            throw new VtokError(`corrupt header: ${what} is not valid JSON`, path);
          }
        },
      };
    };
    const sourceJson = version === 1 ? null : await jsonOf('source');
    const extra = await jsonOf('extra');
    await h.checkCrc(path);
    if (sourceJson) source = sourceJson.parse() as TokenSource;
    header = { modality, kind, configHash, vocabSize, grid, source: source! };
    if (extra.text) header.extra = extra.parse();
    validateHeader(header, path);
    check(bits === vocabBits(vocabSize), `corrupt header: ${bits} bits per id for a vocabulary of ${vocabSize}`, path);
  } catch (e) {
    await fh.close();
    throw e;
  }
  let started = false;
  async function* clips(): AsyncGenerator<TokenClip> {
    check(!started, 'clips() can be iterated once per open', path);
    started = true;
    try {
      for (let index = 0; ; index++) {
        const what = `clip ${index}`;
        if (await r.atEnd()) throw new VtokError(`truncated: ends after ${index} clips without the end record`, path);
        const rec = new RecordReader(r, what);
        const tag = (await rec.take(4)).toString('latin1');
        if (tag === END_TAG) {
          const end = new RecordReader(r, 'the end record');
          end.parts.push(rec.parts[0]!);
          const count = await end.u32();
          await end.checkCrc(path);
          check(count === index, `corrupt end record: says ${count} clips, file has ${index}`, path);
          check(await r.atEnd(), `trailing bytes after the end record at byte ${r.offset}`, path);
          return;
        }
        if (tag !== CLIP_TAG)
          throw new VtokError(
            `corrupt: expected a clip or end record at byte ${r.offset - 4}, found ${JSON.stringify(tag)}`,
            path,
          );
        const grid = await rec.grid(path);
        const n = gridSize(grid, path);
        const nbytes = await rec.u32();
        check(
          nbytes === Math.ceil((n * bits) / 8),
          `corrupt ${what}: ${nbytes} packed bytes for ${n} ids at ${bits} bits`,
          path,
        );
        const packed = await rec.take(nbytes);
        await rec.checkCrc(path);
        const ids = unpackIds(packed, n, bits);
        for (let i = 0; i < n; i++) {
          if (ids[i]! >= header.vocabSize)
            throw new VtokError(
              `corrupt ${what}: id ${ids[i]} at ${i} is outside the vocabulary of ${header.vocabSize}`,
              path,
            );
        }
        yield { grid, ids };
      }
    } finally {
      await fh.close().catch(() => {});
    }
  }
  return { header, clips, close: () => fh.close().catch(() => {}) };
}

/** Reads a whole token file (header and every clip) into memory. */
export async function readTokenFile(path: string): Promise<{ header: TokenFileHeader; clips: TokenClip[] }> {
  const f = await openTokenFile(path);
  const clips: TokenClip[] = [];
  for await (const c of f.clips()) clips.push(c);
  return { header: f.header, clips };
}
