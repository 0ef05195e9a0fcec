import { closeSync, fstatSync, openSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { VtokError, check } from '../util/errors.js';
import { crc32 } from './crc32.js';
import { readAt } from './read-at.js';

/**
 * ZIP archives read by random access through a file descriptor: the central directory once, then any entry's bytes
 * by offset, so a multi-gigabyte archive (torch.save's format, zip64 past 4 GiB) is never read whole. Stored
 * entries are read in place, by range; compressed (deflate) entries only whole. Everything an archive can get wrong
 * (truncation, a bad signature, an entry past the end) is a VtokError naming the file.
 */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  readonly path: string;
  /** File size in bytes. */
  readonly size: number;
  readonly entries: Map<string, ZipEntry>;
  /** A whole entry, decompressed and checked against its CRC-32. */
  read(name: string): Uint8Array;
  /** `length` bytes at `offset` inside a stored entry (no CRC check: a range is not the whole entry). */
  readRange(name: string, offset: number, length: number): Uint8Array;
  close(): void;
}

const EOCD = 0x06054b50,
  ZIP64_LOCATOR = 0x07064b50,
  ZIP64_EOCD = 0x06064b50,
  CENTRAL = 0x02014b50,
  LOCAL = 0x04034b50;

/**
 * CRC-32 of a ZIP entry: zlib's (Node ≥ 20.15, about ten times faster: a multi-gigabyte checkpoint's tensors are
 * checked as they are read), else ./crc32.ts.
 */
export const zipCrc32: (bytes: Uint8Array) => number =
  typeof zlib.crc32 === 'function' ? (bytes) => zlib.crc32(bytes) >>> 0 : (bytes) => crc32(bytes);

const u64 = (dv: DataView, at: number): number => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;

/** The ZIP magic at a file's start (a local header; an empty archive starts with its end record). */
export function looksLikeZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
  return sig === LOCAL || sig === EOCD;
}

/** Opens an archive and reads its central directory (zip64 records honoured). */
export function openZip(path: string): ZipArchive {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new VtokError(`cannot read: ${(e as Error).message}`, path);
  }
  try {
    return readArchive(fd, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function readArchive(fd: number, path: string): ZipArchive {
  const size = fstatSync(fd).size;
  const fail = (msg: string): never => {
    throw new VtokError(msg, path);
  };
  // The end record is in the last 22 + 65535 (comment) bytes.
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, tailLen, size - tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.length);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD && i + 22 + tv.getUint16(i + 20, true) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no ZIP end-of-central-directory record: the archive is truncated or not a ZIP archive');
  let entries = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator right before the end record points at the zip64 end record.
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== ZIP64_LOCATOR) fail('corrupt ZIP: zip64 fields without a zip64 locator');
    const at = u64(tv, loc + 8);
    if (at + 56 > size) fail(`truncated: the zip64 end record at byte ${at} is past the end of the file (${size})`);
    const rec = readAt(fd, 56, at);
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.length);
    if (rv.getUint32(0, true) !== ZIP64_EOCD) fail(`corrupt ZIP: no zip64 end record at byte ${at}`);
    entries = u64(rv, 32);
    cdSize = u64(rv, 40);
    cdOffset = u64(rv, 48);
  }
  if (cdOffset + cdSize > size)
    fail(
      `truncated: the central directory (bytes ${cdOffset}–${cdOffset + cdSize}) ends past the file's ${size} bytes`,
    );
  const cd = readAt(fd, cdSize, cdOffset);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.length);
  const map = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder();
  let p = 0;
  for (let n = 0; n < entries; n++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== CENTRAL)
      fail(`corrupt ZIP: central directory entry ${n} of ${entries} has no valid header`);
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let usize = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true),
      extraLen = cv.getUint16(p + 30, true),
      commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length)
      fail(`corrupt ZIP: central directory entry ${n} overruns`);
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values of the fields saturated above, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true),
        len = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) fail(`corrupt ZIP: short zip64 field in entry ${JSON.stringify(name)}`);
          const v = u64(cv, q);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + len;
    }
    if (flags & 1) fail(`entry ${JSON.stringify(name)} is encrypted`);
    map.set(name, { name, method, compressedSize, size: usize, crc32: crc, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }

  // The data starts after the local header, whose extra field (torch pads it to align tensors) may differ from
  // the central directory's: read on first use.
  const dataStart = new Map<string, number>();
  const entryOf = (name: string): ZipEntry => {
    const z = map.get(name);
    if (!z) throw new VtokError(`no entry ${JSON.stringify(name)} in the archive`, path);
    return z;
  };
  const startOf = (z: ZipEntry): number => {
    const known = dataStart.get(z.name);
    if (known !== undefined) return known;
    const h = readAt(fd, 30, z.localHeaderOffset);
    const hv = new DataView(h.buffer, h.byteOffset, h.length);
    if (h.length < 30 || hv.getUint32(0, true) !== LOCAL)
      fail(`corrupt ZIP: no local header for ${JSON.stringify(z.name)} at byte ${z.localHeaderOffset}`);
    const start = z.localHeaderOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (start + z.compressedSize > size)
      fail(
        `truncated: entry ${JSON.stringify(z.name)} ends at byte ${start + z.compressedSize}, ` +
          `past the file's ${size} bytes`,
      );
    dataStart.set(z.name, start);
    return start;
  };
  return {
    path,
    size,
    entries: map,
    read(name) {
      const z = entryOf(name);
      const raw = readAt(fd, z.compressedSize, startOf(z));
      check(raw.length === z.compressedSize, `truncated: entry ${JSON.stringify(name)} is short`, path);
      let data: Uint8Array;
      if (z.method === 0) data = raw;
      else if (z.method === 8) {
        try {
          data = zlib.inflateRawSync(raw);
        } catch (e) {
          throw new VtokError(`corrupt ZIP: entry ${JSON.stringify(name)} does not inflate (${(e as Error).message})`);
        }
      } else throw new VtokError(`entry ${JSON.stringify(name)} uses compression method ${z.method}`, path);
      check(data.length === z.size, `corrupt ZIP: entry ${JSON.stringify(name)} has the wrong length`, path);
      check(zipCrc32(data) === z.crc32, `corrupt ZIP: entry ${JSON.stringify(name)} fails its CRC-32 check`, path);
      return data;
    },
    readRange(name, offset, length) {
      const z = entryOf(name);
      check(
        z.method === 0,
        `entry ${JSON.stringify(name)} is compressed; only stored (uncompressed) entries are read by range, ` +
          'as torch.save writes them',
        path,
      );
      check(
        offset >= 0 && length >= 0 && offset + length <= z.size,
        `bytes ${offset}–${offset + length} are outside entry ${JSON.stringify(name)} (${z.size} bytes)`,
        path,
      );
      const data = readAt(fd, length, startOf(z) + offset);
      check(data.length === length, `truncated: entry ${JSON.stringify(name)} is short`, path);
      return data;
    },
    close: () => closeSync(fd),
  };
}
