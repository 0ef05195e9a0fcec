import { createHash, type Hash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { check, VtokError } from '../util/errors.js';
import { acquireLock } from '../util/lock.js';
import { formatBytes, progress } from '../util/progress.js';

/**
 * `hf:owner/name[@revision]` names: a model repository on the Hugging Face Hub, fetched into a local cache folder
 * with the hub's own HTTP protocol (what the `huggingface_hub` client does, without Python):
 *
 * - `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true` resolves the revision to a commit and lists
 *   the files, with their sizes, git blob ids and, for LFS files, their SHA-256;
 * - `GET {endpoint}/{repo}/resolve/{commit}/{file}` fetches a file (LFS files redirect to a CDN; fetch drops the
 *   Authorization header on a redirect to another origin, so the token only goes to the hub).
 *
 * The cache (`hubCacheDir()`, or `VTOK_HUB_CACHE`, or the `cacheDir` option) holds one folder per repository:
 *
 *     <cache>/<owner>--<name>/refs/<revision>        the commit the revision last resolved to
 *     <cache>/<owner>--<name>/snapshots/<commit>/    the files, under their names in the repository
 *     <cache>/<owner>--<name>/manifests/<commit>.json  the hub's listing and the SHA-256 of each checked file
 *
 * A file is downloaded to `<file>.incomplete` beside its place, resumed with a Range request when that exists (a
 * dropped connection is retried at once; an interrupted run resumes on the next), and renamed into place only
 * once its size and hash match the hub's: the SHA-256 for LFS files, the git blob id for the others. Without the
 * network (or with HF_HUB_OFFLINE=1) a complete cached snapshot is used; otherwise the error names the files to
 * fetch and the folder to put them in.
 */

export interface HubSpec {
  /** `owner/name`. */
  readonly repo: string;
  /** A branch, tag or commit; `main` when the name gives none. */
  readonly revision: string;
}

export interface HubFile {
  /** The path in the repository (and under `dir`), `/`-separated. */
  readonly name: string;
  readonly size: number;
  /** The SHA-256 of the file's bytes (checked against the hub's for LFS files). */
  readonly sha256: string;
}

export interface HubSnapshot {
  /** The folder holding the files. */
  readonly dir: string;
  readonly repo: string;
  /**
   * The commit the revision resolved to; the revision as written when the files were put by hand into
   * `snapshots/<revision>/` and the hub could not be asked.
   */
  readonly revision: string;
  readonly files: readonly HubFile[];
  /** Set when the hub could not be reached and the cached copy was used: why it could not. */
  readonly unreachable?: string;
}

export interface HubOptions {
  /**
   * The files to fetch (paths in the repository). Default: the model files of the listing (`*.json`,
   * `*.safetensors`, `*.ckpt`, `*.yaml`, `*.yml`, `*.md`, `*.txt`, LICENSE/COPYING/NOTICE; `*.bin`, `*.pt`, `*.pth`
   * only when the repository has no `.safetensors` or `.ckpt` file).
   */
  files?: readonly string[];
  /**
   * One weights file of a repository that holds several (e.g. a checkpoint per resolution): fetch it and the small
   * files (configs, README, licence) instead of the default selection.
   */
  weightsFile?: string;
  /** Default: `VTOK_HUB_CACHE`, else `hubCacheDir()`. */
  cacheDir?: string;
  /** Default: `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Default: `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the token file `huggingface-cli login` writes. */
  token?: string;
  /** Use the cache only (default: `HF_HUB_OFFLINE` set to 1/true/yes/on). */
  offline?: boolean;
  /** No progress bar on stderr. */
  quiet?: boolean;
  /** Called as bytes arrive: bytes so far and in all, over the files still to download. */
  onProgress?: (done: number, total: number, file: string) => void;
}

const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?$/;
const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Whether `s` is an `hf:` name (rather than a file or folder). */
export function isHubSpec(s: string): boolean {
  return s.startsWith('hf:');
}

/** Parses `hf:owner/name[@revision]`; the repository name follows the hub's rules. */
export function parseHubSpec(spec: string): HubSpec {
  const usage = 'write hf:owner/name or hf:owner/name@revision';
  check(isHubSpec(spec), `"${spec}" is not a Hugging Face name: ${usage}`);
  const body = spec.slice(3);
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? 'main' : body.slice(at + 1);
  const parts = repo.split('/');
  check(
    parts.length === 2 && parts.every((p) => p.length <= 96 && REPO_PART.test(p) && !/--|\.\./.test(p)),
    `"${spec}": "${repo}" is not a repository name (owner/name: letters, digits, "-", "_", "."): ${usage}`,
  );
  check(
    revision !== '' && !/\s/.test(revision) && !revision.split('/').some((s) => s === '' || s === '.' || s === '..'),
    `"${spec}": "${revision}" is not a revision (a branch, tag or commit): ${usage}`,
  );
  return { repo, revision };
}

/** The default cache folder: `$XDG_CACHE_HOME/vtok/hub`, `~/.cache/vtok/hub` without it. */
export function hubCacheDir(): string {
  if (process.env.VTOK_HUB_CACHE) return resolve(process.env.VTOK_HUB_CACHE);
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vtok', 'hub');
}

/** The URL a file is served from at a revision (a commit, for one that cannot change under a resume). */
export function hubFileUrl(endpoint: string, repo: string, revision: string, name: string): string {
  const path = name.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** One file of the hub's listing (`siblings` of the API's answer with `blobs=true`). */
interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256: string; size: number };
}

interface Manifest {
  repo: string;
  commit: string;
  siblings: Sibling[];
  /** The SHA-256 of each file checked into place, with its size (a file of another size is not it). */
  verified: Record<string, { size: number; sha256: string }>;
}

/** What to fetch of one file, and what it must match. */
interface Wanted {
  name: string;
  size?: number;
  lfsSha256?: string;
  gitSha1?: string;
}

interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  headers: Record<string, string>;
  /** Where the token came from, for messages; undefined when none is sent. */
  tokenFrom?: string;
  repoDir: string;
}

/** The hub could not be reached (DNS, refused, reset, timeout): the offline case. */
class Unreachable extends Error {}

/** Resolves an `hf:` name to a local folder holding its files, downloading what the cache lacks. */
export async function hubSnapshot(spec: string | HubSpec, opts: HubOptions = {}): Promise<HubSnapshot> {
  const { repo, revision } = typeof spec === 'string' ? parseHubSpec(spec) : spec;
  const token = findToken(opts.token);
  const ctx: Ctx = {
    repo,
    revision,
    endpoint: (opts.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    headers: { 'user-agent': 'vtok', ...(token ? { authorization: `Bearer ${token.token}` } : {}) },
    tokenFrom: token?.from,
    repoDir: join(opts.cacheDir ? resolve(opts.cacheDir) : hubCacheDir(), repo.replace('/', '--')),
  };
  const offline = opts.offline ?? /^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '');
  const pinned = opts.files ?? (opts.weightsFile === undefined ? undefined : [opts.weightsFile]);
  if (offline) return fromCache(ctx, pinned, 'HF_HUB_OFFLINE is set');
  let listing: { commit: string; siblings: Sibling[] };
  try {
    listing = await fetchListing(ctx);
  } catch (e) {
    if (e instanceof Unreachable) return fromCache(ctx, pinned, e.message);
    throw e;
  }
  const { commit, siblings } = listing;
  const dir = join(ctx.repoDir, 'snapshots', commit);
  const wanted = selectFiles(siblings, opts.files ?? withSmallFiles(siblings, opts.weightsFile), `${repo}@${revision}`);
  mkdirSync(dir, { recursive: true });
  const release = acquireLock(join(ctx.repoDir, '.lock'), 'vtok download', ctx.repoDir);
  try {
    writeFileAtomic(refPath(ctx), `${commit}\n`);
    const manifest: Manifest = { repo, commit, siblings, verified: readManifest(ctx, commit)?.verified ?? {} };
    const save = () => writeFileAtomic(manifestPath(ctx, commit), `${JSON.stringify(manifest, null, 1)}\n`);
    save();
    const todo: Wanted[] = [];
    for (const w of wanted) if (!(await checkLocal(dir, w, manifest))) todo.push(w);
    save();
    await downloadAll({ ...ctx, revision: commit }, dir, todo, manifest, save, opts);
    return { dir, repo, revision: commit, files: wanted.map((w) => fileOf(w, manifest)) };
  } finally {
    release();
  }
}

function fileOf(w: Wanted, manifest: Manifest): HubFile {
  const v = manifest.verified[w.name]!;
  return { name: w.name, size: v.size, sha256: v.sha256 };
}

function findToken(option?: string): { token: string; from: string } | undefined {
  if (option) return { token: option, from: 'the token option' };
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN']) {
    const v = process.env[name]?.trim();
    if (v) return { token: v, from: name };
  }
  const hfHome = process.env.HF_HOME || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  const file = process.env.HF_TOKEN_PATH || join(hfHome, 'token');
  try {
    const t = readFileSync(file, 'utf8').trim();
    return t ? { token: t, from: file } : undefined;
  } catch {
    // no token file: anonymous access, which public repositories allow
    return undefined;
  }
}

function refPath(ctx: Ctx): string {
  return join(ctx.repoDir, 'refs', encodeURIComponent(ctx.revision));
}

function manifestPath(ctx: Ctx, commit: string): string {
  return join(ctx.repoDir, 'manifests', `${commit}.json`);
}

function readManifest(ctx: Ctx, commit: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(manifestPath(ctx, commit), 'utf8')) as Manifest;
    return Array.isArray(m.siblings) && m.verified && typeof m.verified === 'object' ? m : undefined;
  } catch {
    // none yet, or unreadable: the hub's listing is asked for again and every file checked afresh
    return undefined;
  }
}

async function request(url: string, ctx: Ctx, headers: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch(url, { headers: { ...ctx.headers, ...headers } });
  } catch (e) {
    throw new Unreachable(`${ctx.endpoint}: ${networkReason(e)}`);
  }
}

/** The system's reason for a failed request or a broken body (`ENOTFOUND`, `ECONNREFUSED`, "other side closed"). */
function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

async function fetchListing(ctx: Ctx): Promise<{ commit: string; siblings: Sibling[] }> {
  const url = `${ctx.endpoint}/api/models/${ctx.repo}/revision/${encodeURIComponent(ctx.revision)}?blobs=true`;
  const res = await request(url, ctx);
  if (!res.ok) throw await httpError(res, ctx);
  let body: { sha?: unknown; siblings?: unknown };
  try {
    body = (await res.json()) as typeof body;
  } catch (e) {
    throw new VtokError(`the hub's answer for ${ctx.repo}@${ctx.revision} is not JSON (${(e as Error).message})`, url);
  }
  const siblings = body.siblings;
  check(
    typeof body.sha === 'string' &&
      COMMIT.test(body.sha) &&
      Array.isArray(siblings) &&
      siblings.every((s: Sibling) => typeof s?.rfilename === 'string'),
    `the hub's answer for ${ctx.repo}@${ctx.revision} has no commit or no file list`,
    url,
  );
  for (const s of siblings as Sibling[]) checkName(s.rfilename, ctx.repo);
  return { commit: body.sha, siblings };
}

/** A name from the hub becomes a path under the snapshot folder: it must stay inside it. */
function checkName(name: string, repo: string): void {
  const parts = name.split('/');
  check(
    !name.includes('\\') && !name.includes('\0') && parts.every((p) => p !== '' && p !== '.' && p !== '..'),
    `the hub lists a file name in ${repo} that would leave its folder: "${name}"`,
  );
}

async function httpError(res: Response, ctx: Ctx, file?: string): Promise<VtokError> {
  const code = res.headers.get('x-error-code') ?? '';
  let said = res.headers.get('x-error-message') ?? '';
  const text = await res.text().catch(() => '');
  if (!said) {
    try {
      const error = (JSON.parse(text) as { error?: unknown }).error;
      if (typeof error === 'string') said = error;
    } catch {
      // an HTML or empty error page says nothing worth repeating
    }
  }
  const page = `${ctx.endpoint}/${ctx.repo}`;
  const token = ctx.tokenFrom
    ? `the token from ${ctx.tokenFrom} cannot read it`
    : 'set HF_TOKEN to an access token (https://huggingface.co/settings/tokens) of an account that can read it';
  let msg: string;
  if (code === 'RevisionNotFound') msg = `revision "${ctx.revision}" not found in ${ctx.repo} (${page})`;
  else if (code === 'EntryNotFound' || (file !== undefined && res.status === 404)) {
    msg = `file "${file}" not found in ${ctx.repo} at ${ctx.revision} (${page})`;
  } else if (code === 'GatedRepo') {
    msg = `${ctx.repo} is gated: accept its conditions at ${page} with your account, and ${token}`;
  } else if (code === 'RepoNotFound' || res.status === 404 || (res.status === 401 && file === undefined)) {
    // the hub answers 401 for a repository that does not exist as for a private one, so as not to tell them apart
    msg =
      `repository ${ctx.repo} (revision ${ctx.revision}) not found on ${ctx.endpoint}; ` +
      `if it is private or gated, ${token}`;
  } else if (res.status === 401 || res.status === 403) {
    msg = `access to ${ctx.repo} denied (HTTP ${res.status}): ${token}`;
  } else msg = `the hub answered HTTP ${res.status} ${res.statusText} for ${res.url}`;
  return new VtokError(said ? `${msg} (the hub says: ${said})` : msg);
}

const MODEL_FILE = /(?:^|\/)(?:LICEN[CS]E|COPYING|NOTICE)[^/]*$|\.(?:json|safetensors|ckpt|ya?ml|md|txt)$/i;
const PREFERRED_WEIGHTS = /\.(?:safetensors|ckpt)$/i;
const OTHER_WEIGHTS = /\.(?:bin|pt|pth)$/i;

const SMALL_FILE = /\.(json|ya?ml|md|txt)$|(^|\/)(LICENSE|COPYING|NOTICE)[^/]*$/i;

/** `weightsFile` and the repository's small files; undefined (the default selection) without one. */
function withSmallFiles(siblings: Sibling[], weightsFile: string | undefined): string[] | undefined {
  if (weightsFile === undefined) return undefined;
  const small = siblings.map((s) => s.rfilename).filter((n) => SMALL_FILE.test(n) && n !== weightsFile);
  return [weightsFile, ...small];
}

function selectFiles(siblings: Sibling[], files: readonly string[] | undefined, where: string): Wanted[] {
  let chosen: Sibling[];
  if (files) {
    const byName = new Map(siblings.map((s) => [s.rfilename, s]));
    const missing = files.filter((f) => !byName.has(f));
    check(missing.length === 0, () => {
      const names = siblings.map((s) => s.rfilename);
      const listed = names.length > 30 ? `${names.slice(0, 30).join(', ')}, …` : names.join(', ');
      return `not in ${where}: ${missing.join(', ')} (it has ${listed || 'no files'})`;
    });
    chosen = [...new Set(files)].map((f) => byName.get(f)!);
  } else {
    chosen = siblings.filter((s) => MODEL_FILE.test(s.rfilename));
    // repositories often hold the same weights twice (PyTorch pickle and safetensors): fetch the pickle only alone
    if (!siblings.some((s) => PREFERRED_WEIGHTS.test(s.rfilename))) {
      chosen.push(...siblings.filter((s) => OTHER_WEIGHTS.test(s.rfilename)));
    }
    check(chosen.length > 0, `${where} holds no model files (*.json, *.safetensors, *.ckpt, *.yaml, …): name them`);
  }
  return chosen.map((s) => {
    const size = s.lfs?.size ?? s.size;
    const lfsSha256 = s.lfs && SHA256.test(s.lfs.sha256) ? s.lfs.sha256 : undefined;
    // a git blob id hashes the file itself only when it is not in LFS (else it hashes the pointer)
    const gitSha1 = !s.lfs && s.blobId && COMMIT.test(s.blobId) && size !== undefined ? s.blobId : undefined;
    return { name: s.rfilename, size, lfsSha256, gitSha1 };
  });
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/**
 * Whether `w` is in place in `dir` and matches the hub: recorded in the manifest with the file's size, or (a file
 * put there by hand, or by a run cut short before it saved the manifest) hashed now and checked.
 */
async function checkLocal(dir: string, w: Wanted, manifest: Manifest): Promise<boolean> {
  const path = join(dir, w.name);
  const size = sizeOf(path);
  if (size === undefined || (w.size !== undefined && size !== w.size)) return false;
  const known = manifest.verified[w.name];
  if (known && known.size === size) return true;
  const h = hashesFor(w);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const { sha256, differs } = h.digest();
  check(!differs, () => `not the hub's ${w.name} (its ${differs}): delete it and run again to download it`, path);
  manifest.verified[w.name] = { size, sha256 };
  return true;
}

/** SHA-256 of a file's bytes, with the git blob id alongside when the hub gives one to check against. */
function hashesFor(w: Wanted) {
  const sha = createHash('sha256');
  let git: Hash | undefined;
  if (w.gitSha1 && w.size !== undefined) git = createHash('sha1').update(`blob ${w.size}\0`);
  return {
    update(chunk: Uint8Array) {
      sha.update(chunk);
      git?.update(chunk);
    },
    /** The SHA-256, and how the bytes differ from what the hub lists, if they do. */
    digest(): { sha256: string; differs?: string } {
      const sha256 = sha.digest('hex');
      if (w.lfsSha256 && sha256 !== w.lfsSha256) {
        return { sha256, differs: `SHA-256 ${sha256} is not the hub's ${w.lfsSha256}` };
      }
      const blob = git?.digest('hex');
      if (w.gitSha1 && blob !== undefined && blob !== w.gitSha1) {
        return { sha256, differs: `git blob id ${blob} is not the hub's ${w.gitSha1}` };
      }
      return { sha256 };
    },
  };
}

async function downloadAll(
  ctx: Ctx,
  dir: string,
  todo: Wanted[],
  manifest: Manifest,
  save: () => void,
  opts: HubOptions,
): Promise<void> {
  if (todo.length === 0) return;
  const total = todo.reduce((n, w) => n + Math.max(0, (w.size ?? 0) - (sizeOf(partPath(dir, w)) ?? 0)), 0);
  const bar = progress(`download ${ctx.repo}`, Math.max(1, total), { quiet: opts.quiet, bytes: true });
  let done = 0;
  try {
    for (const w of todo) {
      const onBytes = (n: number) => {
        done += n;
        bar.update(done, { file: w.name });
        opts.onProgress?.(done, total, w.name);
      };
      const { size, sha256 } = await download(ctx, dir, w, onBytes);
      manifest.verified[w.name] = { size, sha256 };
      save();
    }
  } finally {
    bar.stop();
  }
}

function partPath(dir: string, w: Wanted): string {
  return `${join(dir, w.name)}.incomplete`;
}

/** Attempts in a row that may fail without a byte arriving before a download is given up (then run again). */
const MAX_STALLS = 4;
const MAX_ATTEMPTS = 50;
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Downloads one file to `<name>.incomplete`, resuming what is there, then checks and renames it into place.
 * A connection that breaks after bytes arrived is resumed at once; one that brings nothing is retried after a
 * growing pause, a few times.
 */
async function download(
  ctx: Ctx,
  dir: string,
  w: Wanted,
  onBytes: (n: number) => void,
): Promise<{ size: number; sha256: string }> {
  const dest = join(dir, w.name);
  const part = partPath(dir, w);
  mkdirSync(dirname(dest), { recursive: true });
  const url = hubFileUrl(ctx.endpoint, ctx.repo, ctx.revision, w.name);
  let size = w.size;
  let h = hashesFor(w);
  // bytes of `part` that `h` has seen; -1: none yet (a file left by an earlier run is hashed before appending)
  let hashed = -1;
  let have = sizeOf(part) ?? 0;
  if (size !== undefined && have > size) {
    rmSync(part, { force: true });
    have = 0;
  }
  for (let attempt = 1, stalls = 0; size === undefined || have < size || sizeOf(part) === undefined; attempt++) {
    const before = have;
    let failure: string | undefined;
    let res: Response | undefined;
    try {
      res = await request(url, ctx, have > 0 ? { range: `bytes=${have}-` } : {});
    } catch (e) {
      if (!(e instanceof Unreachable)) throw e;
      failure = e.message;
    }
    if (res?.status === 416) {
      // the range lies past the file's end: what is there is not a prefix of it
      await res.body?.cancel();
      rmSync(part, { force: true });
      have = 0;
      failure = 'the hub refused to resume (HTTP 416)';
    } else if (res && RETRY_STATUS.has(res.status)) {
      await res.body?.cancel();
      failure = `HTTP ${res.status} ${res.statusText}`;
    } else if (res && !res.ok) {
      throw await httpError(res, ctx, w.name);
    } else if (res) {
      const start = res.status === 206 ? contentRangeStart(res.headers.get('content-range')) : 0;
      // a server that ignores the range sends the whole file again
      if (start !== have) have = 0;
      size ??= contentSize(res, have);
      if (hashed !== have) {
        h = await hashPrefix(w, part, have);
        hashed = have;
      }
      const fh = await open(part, have > 0 ? 'a' : 'w');
      try {
        for await (const chunk of res.body ?? []) {
          if (size !== undefined && have + chunk.length > size) {
            throw new VtokError(`the hub sent more than the ${size} bytes it lists for ${w.name}`, url);
          }
          await fh.write(chunk);
          h.update(chunk);
          have += chunk.length;
          hashed = have;
          onBytes(chunk.length);
        }
        if (size === undefined || have === size) await fh.sync();
      } catch (e) {
        if (e instanceof VtokError) {
          await fh.close();
          rmSync(part, { force: true });
          throw e;
        }
        const err = e as NodeJS.ErrnoException;
        if (err.syscall) throw new VtokError(`cannot write (${err.code})`, part);
        failure = networkReason(e);
      } finally {
        await fh.close().catch(() => undefined);
      }
      // without a length from the hub or the response, the end of the body is the end of the file
      if (!failure) size ??= have;
      if (!failure && size !== undefined && have < size)
        failure = `the connection closed after ${have} of ${size} bytes`;
    }
    if (!failure) continue;
    stalls = have > before ? 0 : stalls + 1;
    if (stalls >= MAX_STALLS || attempt >= MAX_ATTEMPTS) {
      throw new VtokError(
        `download of ${w.name} failed (${failure}); the ${formatBytes(have)} so far are kept in ${part}: ` +
          'run again to resume',
        url,
      );
    }
    if (stalls > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** stalls));
  }
  if (hashed !== have) {
    h = await hashPrefix(w, part, have);
    hashed = have;
  }
  const { sha256, differs } = h.digest();
  if (differs) {
    rmSync(part, { force: true });
    throw new VtokError(
      `the download of ${w.name} does not match the hub's listing: its ${differs}. It was deleted; run again ` +
        '(a transfer gone wrong, or a proxy in between that changes files)',
      url,
    );
  }
  renameSync(part, dest);
  return { size: have, sha256 };
}

function contentRangeStart(header: string | null): number {
  const m = /^bytes (\d+)-/.exec(header ?? '');
  return m ? Number(m[1]) : -1;
}

/** The file's whole size from a response that starts at byte `from`, when the hub's listing did not give it. */
function contentSize(res: Response, from: number): number | undefined {
  const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  if (total) return Number(total[1]);
  const length = res.headers.get('content-length');
  return length === null ? undefined : from + Number(length);
}

async function hashPrefix(w: Wanted, path: string, n: number): Promise<ReturnType<typeof hashesFor>> {
  const h = hashesFor(w);
  if (n > 0) for await (const chunk of createReadStream(path, { start: 0, end: n - 1 })) h.update(chunk as Buffer);
  return h;
}

/**
 * The snapshot from the cache alone, when the hub cannot be asked: the commit the revision last resolved to, or
 * files put by hand into `snapshots/<revision>/`. Throws the offline message when they are not all there.
 */
async function fromCache(ctx: Ctx, files: readonly string[] | undefined, reason: string): Promise<HubSnapshot> {
  const where = `hf:${ctx.repo}@${ctx.revision}`;
  const commit = readRef(ctx);
  const manifest = commit ? readManifest(ctx, commit) : undefined;
  if (commit && manifest) {
    const dir = join(ctx.repoDir, 'snapshots', commit);
    const wanted = selectFiles(manifest.siblings, files, `${where} (commit ${commit})`);
    const missing: Wanted[] = [];
    const known = Object.keys(manifest.verified).length;
    for (const w of wanted) if (!(await checkLocal(dir, w, manifest))) missing.push(w);
    // files put in by hand are hashed once
    if (Object.keys(manifest.verified).length > known) {
      writeFileAtomic(manifestPath(ctx, commit), `${JSON.stringify(manifest, null, 1)}\n`);
    }
    if (missing.length > 0) throw offlineError(ctx, reason, dir, commit, missing);
    return {
      dir,
      repo: ctx.repo,
      revision: commit,
      files: wanted.map((w) => fileOf(w, manifest)),
      unreachable: reason,
    };
  }
  const dir = join(ctx.repoDir, 'snapshots', encodeURIComponent(ctx.revision));
  const present = listFiles(dir).filter((f) => (files ? files.includes(f) : MODEL_FILE.test(f)));
  const missing = files ? files.filter((f) => !present.includes(f)) : present.length === 0 ? undefined : [];
  if (missing === undefined || missing.length > 0) {
    throw offlineError(
      ctx,
      reason,
      dir,
      ctx.revision,
      missing?.map((name) => ({ name })),
    );
  }
  const out: HubFile[] = [];
  for (const name of present) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(join(dir, name))) h.update(chunk as Buffer);
    out.push({ name, size: statSync(join(dir, name)).size, sha256: h.digest('hex') });
  }
  return { dir, repo: ctx.repo, revision: ctx.revision, files: out, unreachable: reason };
}

function readRef(ctx: Ctx): string | undefined {
  if (COMMIT.test(ctx.revision)) return ctx.revision;
  try {
    const c = readFileSync(refPath(ctx), 'utf8').trim();
    return COMMIT.test(c) ? c : undefined;
  } catch {
    // the revision was never resolved here
    return undefined;
  }
}

/** The files under `dir`, `/`-separated, but for downloads in progress. */
function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.endsWith('.incomplete'))
      .map((e) =>
        join(e.parentPath ?? e.path, e.name)
          .slice(dir.length + 1)
          .split('\\')
          .join('/'),
      )
      .sort();
  } catch {
    return [];
  }
}

/** The one message for the offline case: which files to fetch, from where, and where they go. */
function offlineError(ctx: Ctx, reason: string, dir: string, rev: string, missing?: Wanted[]): VtokError {
  const lines = [`cannot reach the Hugging Face Hub (${reason}) to fetch hf:${ctx.repo}@${ctx.revision}.`];
  if (missing) {
    lines.push('Download these files on a machine that is online:');
    for (const w of missing) {
      const size = w.size === undefined ? '' : ` (${formatBytes(w.size)})`;
      lines.push(`  ${hubFileUrl(ctx.endpoint, ctx.repo, rev, w.name)}${size}`);
    }
  } else {
    const base = hubFileUrl(ctx.endpoint, ctx.repo, rev, 'x').slice(0, -1);
    lines.push(
      `Download the model files listed at ${ctx.endpoint}/${ctx.repo}/tree/${encodeURIComponent(rev)} ` +
        `(*.json, *.safetensors, *.ckpt, *.yaml, *.md, LICENSE) on a machine that is online, each from ${base}<file>.`,
    );
  }
  lines.push(
    `Then put them in ${dir} (keeping their paths) and run again, ` +
      'or put them in a folder and give that folder to `vtok import <folder>`.',
  );
  return new VtokError(lines.join('\n'));
}
