import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAlive, tempPath } from './atomic.js';
import { VtokError } from './errors.js';

/**
 * A lock file holding the pid of the process that owns a folder, so that two runs never write into it at once.
 * The file is written whole under a temp name and hard-linked into place: the link fails if the lock exists, so
 * taking it is atomic (as O_EXCL) and a lock on disk is never seen empty. A lock whose process is gone (killed,
 * crashed) is stale and taken over. `what` names the owner's command for the message ("vtok tokenize").
 * Returns the release function (idempotent; removes the lock only while it is still this process's).
 */
export function acquireLock(path: string, what: string, folder: string): () => void {
  const tmp = tempPath(path);
  writeFileSync(tmp, `${process.pid}\n`);
  try {
    // twice at most: once more after removing a stale lock
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw new VtokError(`cannot create the lock file (${code})`, path);
      }
      const pid = ownerOf(path);
      if (pid !== undefined && isAlive(pid)) {
        throw new VtokError(`another ${what} (pid ${pid}) is writing to ${folder}; wait for it, or stop it`);
      }
      if (attempt > 0) throw new VtokError(`another ${what} took the lock of ${folder} at the same time`, path);
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (ownerOf(path) === process.pid) rmSync(path, { force: true });
  };
}

/** The pid a lock file names; undefined when it is gone or names none (then it is stale). */
function ownerOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
