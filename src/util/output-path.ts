import { closeSync, lstatSync, openSync, realpathSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tempPath } from './atomic.js';
import { VtokError } from './errors.js';

/**
 * Output paths checked before any work, so that a long command never fails at its end and never harms what it
 * was not asked to write. Outputs are written atomically (temp file beside the target, then rename), which would
 * replace a device node, a FIFO or a symlink with a regular file: so a file output must be a regular file or
 * absent, an output folder a folder or absent, the nearest existing ancestor a writable folder. An output is never
 * one of the command's inputs (the rename would replace it). Standard output is written only when asked for with
 * "-".
 */
export const STDOUT = '-';

/** What a command reads, for the same-file check; "-" (standard input) and options not given are skipped. */
export type Inputs = readonly (string | undefined)[];

/** A file's identity: its real path, device and inode (a hard link has another path, the same inode). */
function identity(path: string): { real: string; dev: number; ino: number } | null {
  try {
    const st = statSync(path);
    return { real: realpathSync(path), dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Refuses an output that is one of `inputs`: the same real path, or the same device and inode. */
function checkNotInput(path: string, inputs: Inputs, option: string, what: string): void {
  const out = identity(path);
  if (!out) return;
  for (const input of inputs) {
    if (input === undefined || input === STDOUT) continue;
    const id = identity(input);
    if (id && (id.real === out.real || (id.dev === out.dev && id.ino === out.ino && id.ino !== 0))) {
      const same = `${option} is the input ${input} (the same ${what})`;
      throw new VtokError(`${same}; refusing to overwrite an input, give another name`, path);
    }
  }
}

function stat(path: string, follow: boolean): Stats | null {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (e) {
    // ENOTDIR: a parent is a file, which checkParent reports by name
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return null;
    throw new VtokError(`cannot inspect the output path (${(e as NodeJS.ErrnoException).code})`, path);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The nearest existing ancestor of `path` must be a directory this process can create entries in. Tried by
 * creating (and removing) a temp file there: permission bits do not bind root, but read-only mounts and /proc do.
 */
function checkWritable(dir: string): string | null {
  const probe = tempPath(join(dir, '.vtok-write-test'));
  try {
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

function checkParent(path: string, what: string): void {
  let dir = dirname(resolve(path));
  for (;;) {
    const st = stat(dir, true);
    if (st) {
      if (!st.isDirectory()) throw new VtokError(`cannot write ${what}: ${dir} is not a directory`, path);
      const err = checkWritable(dir);
      if (err) throw new VtokError(`cannot write ${what}: ${dir} is not writable (${err})`, path);
      return;
    }
    const up = dirname(dir);
    if (up === dir) throw new VtokError(`cannot write ${what}: no existing parent directory`, path);
    dir = up;
  }
}

/**
 * Checks a file output (`option` names it in messages, e.g. "-o"), also against the files the command reads
 * (`inputs`). Returns the path to write: the path itself, the target of a symlink to a regular file (so the link
 * is kept), or STDOUT for "-" where `stdout` allows it.
 */
export function checkOutputFile(path: string, opts: { option: string; stdout?: boolean; inputs?: Inputs }): string {
  if (path === STDOUT) {
    if (opts.stdout) return STDOUT;
    throw new VtokError(`${opts.option} - (standard output) is not supported here; give a file name`);
  }
  if (path === '') throw new VtokError(`${opts.option} needs a file name`);
  const link = stat(path, false);
  let target = path;
  if (link?.isSymbolicLink()) {
    const st = stat(path, true);
    if (st) target = realpathSync(path);
  }
  const st = stat(target, false);
  if (st && !st.isFile()) {
    const hint = opts.stdout && !st.isDirectory() ? `; use ${opts.option} - to write to standard output` : '';
    throw new VtokError(`output is ${kindOf(st)}, not a regular file; refusing to replace it${hint}`, path);
  }
  checkNotInput(path, opts.inputs ?? [], opts.option, 'file');
  checkParent(target, 'the output');
  return target;
}

/**
 * Checks an output folder (`option` names it in messages, e.g. "--out"): a directory or absent, and none of the
 * folders the command reads (`inputs`, e.g. the run `vtok pack` reads).
 */
export function checkOutputDir(path: string, opts: { option: string; inputs?: Inputs }): string {
  if (path === '' || path === STDOUT) throw new VtokError(`${opts.option} needs a folder name`);
  const st = stat(path, true);
  if (st) {
    if (!st.isDirectory())
      throw new VtokError(`${opts.option} must be a folder; this is ${st.isFile() ? 'a file' : kindOf(st)}`, path);
    checkNotInput(path, opts.inputs ?? [], opts.option, 'folder');
    const err = checkWritable(path);
    if (err) throw new VtokError(`folder is not writable (${err})`, path);
    return path;
  }
  checkParent(path, 'the folder');
  return path;
}
