import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VtokError } from './errors.js';

/** The temp name beside `path` that an atomic write by this process uses (removeStaleTemps recognises it). */
export function tempPath(path: string): string {
  return `${path}.${process.pid}.${Date.now()}.tmp`;
}

/**
 * Writes a file atomically: the bytes go to a temp file beside the target, are fsynced, then renamed over it.
 * A crash leaves either the old file or the new one, never a torn one; a failure leaves no temp file and names
 * the target, not the temp file.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string | (Uint8Array | string)[]): void {
  writeFileStreamedAtomic(path, (write) => {
    for (const part of Array.isArray(data) ? data : [data]) write(typeof part === 'string' ? Buffer.from(part) : part);
  });
}

/**
 * writeFileAtomic for content made piece by piece: `produce` passes each piece to `write` as it is made (a
 * multi-gigabyte weights file, one tensor at a time), so no more than one piece need be in memory. A failure in
 * `produce` or in a write (a full disk) removes the temp file. `io.writeSync` stands in for fs.writeSync (tests
 * simulate a full disk with it).
 */
export function writeFileStreamedAtomic(
  path: string,
  produce: (write: (bytes: Uint8Array) => void) => void,
  io: { writeSync?: typeof writeSync } = {},
): void {
  const tmp = tempPath(path);
  const put = io.writeSync ?? writeSync;
  let fd: number | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(tmp, 'w');
    const out = fd;
    produce((bytes) => {
      let off = 0;
      while (off < bytes.length) off += put(out, bytes, off, bytes.length - off);
    });
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    if (fd !== undefined || (e as NodeJS.ErrnoException).syscall === 'rename') rmSync(tmp, { force: true });
    throw systemError(e, path);
  }
}

/** A file-system error as a VtokError naming `path` and the cause in words; other errors unchanged. */
export function systemError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  return code && !(e instanceof VtokError)
    ? new VtokError(`cannot write (${code}: ${SYSTEM_ERRORS[code] ?? 'system error'})`, path)
    : e;
}

const SYSTEM_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  EEXIST: 'a parent is not a directory',
  EDQUOT: 'disk quota exceeded',
};

/**
 * Temp entries left in `dir` by processes that died while writing: `<name>.<pid>.<ms>.tmp` (writeFileAtomic) and
 * `<name>.tmp-<pid>` (checkpoint directories). Entries of processes still alive (this one included) are kept.
 */
const TEMP = /^.+\.(?:(\d+)\.\d+\.tmp|tmp-(\d+))$/;

export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m) continue;
    const pid = Number(m[1] ?? m[2]);
    if (pid === process.pid || isAlive(pid)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Removes the temp files this process has beside `path` (`<name>.<pid>.<ms>.tmp`): for a second Ctrl-C, which ends
 * the process before a write in progress (e.g. ffmpeg's, streamed) can remove its own.
 */
export function removeOwnTemps(path: string): void {
  const prefix = `${basename(path)}.${process.pid}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+\.tmp$/.test(name.slice(prefix.length))) continue;
    rmSync(join(dirname(path), name), { force: true });
  }
}

/** Whether process `pid` exists (a lock or temp entry of a dead process is stale). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
