import { readSync } from 'node:fs';

/** Bytes per read call: Node reads at most 2 GiB − 1 at once, and a tensor may be larger. */
const READ_CHUNK = 2 ** 30;

/** `length` bytes of a file descriptor from `position` (fewer where the file ends first: callers check). */
export function readAt(fd: number, length: number, position: number): Uint8Array {
  const buf = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    const got = readSync(fd, buf, off, Math.min(length - off, READ_CHUNK), position + off);
    if (got === 0) break;
    off += got;
  }
  return buf.subarray(0, off);
}
