import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { writeSafetensorsStreamed } from '../io/safetensors-file.js';
import { fromFloat32, fromInt32, fromInt64, toBigInt64, toFloat32, toInt32 } from '../io/tensor-data.js';
import { openTorchCheckpoint, type TorchCheckpoint } from '../io/torch-checkpoint.js';
import { removeStaleTemps, systemError, writeFileAtomic } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';
import { checkOutputDir } from '../util/output-path.js';
import { progress } from '../util/progress.js';
import type { ImportOptions, ImportSource, ImportTensor, ReleaseImporter } from './import-plan.js';
import { larpImporter } from './larp/import.js';
import { openMagvit2Importer } from './magvit2/import.js';

/**
 * `vtok import`: a released model (the authors' files: a PyTorch checkpoint, a Hugging Face folder) as an ordinary
 * vtok model directory, the layout `vtok pack` writes and every command takes as `--model`:
 *
 *   config.json                        model kind and config, data size, and `imported`: where the weights came
 *                                      from (path, or repository and revision), each file's SHA-256, the licence
 *   checkpoints/best.json, latest.json → step-0000000/{model.safetensors, state.json}
 *
 * What a release is and how its names map to vtok's is the business of one `ReleaseImporter` per release kind
 * (./import-plan.ts; Open-MAGVIT2: ./magvit2/import.ts; LARP: ./larp/import.ts), tried in turn by `detect`; a higher
 * floor adds its own with `registerImporter` (LARP's autoregressive generator). This file does the rest the same for
 * all: it checks the output, writes the weights tensor by tensor (read by offset from the release's files, converted,
 * streamed to a safetensors file: memory holds about one tensor), records provenance, and writes everything into
 * `<out>.tmp-<pid>` next to `--out`, renamed into place at the end: a failure (a config that does not fit, a full
 * disk) leaves nothing at `--out`.
 */

export type {
  ImportOptions,
  ImportPlan,
  ImportSource,
  ImportTensor,
  ReleaseImporter,
  WeightSource,
} from './import-plan.js';
export { expectedWeights, matchWeights } from './import-plan.js';

/** The release kinds, tried in this order (LARP's folder is recognised by its config.json, before any checkpoint). */
const importers: ReleaseImporter[] = [larpImporter, openMagvit2Importer];

/** Adds a release kind; later registrations are tried first (a more specific importer may claim an input). */
export function registerImporter(imp: ReleaseImporter): void {
  const at = importers.findIndex((i) => i.name === imp.name);
  if (at >= 0) importers.splice(at, 1);
  importers.unshift(imp);
}

export function releaseImporters(): readonly ReleaseImporter[] {
  return importers;
}

export interface ImportResult {
  out: string;
  release: string;
  licence: string;
  kind: string;
  parameters: number;
  bytes: number;
  notes: string[];
  files: { name: string; role: string; bytes: number; sha256: string }[];
}

const CHECKPOINT_EXT = new Set(['.ckpt', '.pt', '.pth', '.bin']);

/** Reads `--config`: JSON when it parses as JSON, else YAML. */
function readConfigFile(path: string): { path: string; content: unknown } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new VtokError(`cannot read the config: ${(e as Error).message}`, path);
  }
  try {
    return { path, content: extname(path).toLowerCase() === '.json' ? JSON.parse(text) : loadYaml(text) };
  } catch (e) {
    throw new VtokError(
      `config is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      path,
    );
  }
}

/** Opens what the user gave as an ImportSource (nothing is read until an importer asks). */
export function openImportSource(input: string, configPath?: string): ImportSource & { close(): void } {
  const path = resolve(input);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new VtokError('no such file or folder', input);
  }
  const isFolder = st.isDirectory();
  const files = isFolder
    ? readdirSync(path)
        .sort()
        .map((n) => join(path, n))
        .filter((f) => statSync(f).isFile())
    : [path];
  let checkpoint: TorchCheckpoint | undefined;
  let opened = false;
  let configJson: Record<string, unknown> | undefined;
  let configRead = false;
  return {
    path,
    isFolder,
    files,
    config: configPath ? readConfigFile(configPath) : undefined,
    readConfig: readConfigFile,
    file: (name) => files.find((f) => basename(f) === name),
    configJson() {
      if (configRead) return configJson;
      configRead = true;
      const f = isFolder ? files.find((x) => basename(x) === 'config.json') : undefined;
      if (!f) return undefined;
      try {
        const v = JSON.parse(readFileSync(f, 'utf8'));
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
        configJson = v;
      } catch (e) {
        throw new VtokError(`not a valid JSON object: ${(e as Error).message}`, f);
      }
      return configJson;
    },
    checkpoint() {
      if (opened) return checkpoint;
      opened = true;
      const candidates = files.filter((f) => CHECKPOINT_EXT.has(extname(f).toLowerCase()));
      if (candidates.length > 1)
        throw new VtokError(
          `the folder holds ${candidates.length} checkpoints (${candidates.map((f) => basename(f)).join(', ')}): ` +
            'give the one to import',
          path,
        );
      if (candidates.length === 1) checkpoint = openTorchCheckpoint(candidates[0]!);
      return checkpoint;
    },
    close() {
      checkpoint?.close();
    },
  };
}

/** A tensor's bytes in the dtype it is written in; non-finite float values are refused by name. */
function bytesFor(t: ImportTensor): Uint8Array {
  const s = t.read();
  if (t.dtype === 'F32' || t.dtype === 'F16') {
    const direct = s.dtype === 'F32' && s.data.byteOffset % 4 === 0;
    const values = direct ? new Float32Array(s.data.buffer, s.data.byteOffset, s.data.length / 4) : toFloat32(s);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!))
        throw new VtokError(`weight ${t.name} holds ${values[i]} at index ${i} (damaged or diverged weights)`);
    }
    return direct && t.dtype === 'F32' ? s.data : fromFloat32(values, t.shape, t.dtype).data;
  }
  if (s.dtype === t.dtype) return s.data;
  if (t.dtype === 'I64') return fromInt64(toBigInt64(s), t.shape).data;
  if (t.dtype === 'I32') return fromInt32(toInt32(s, t.name), t.shape).data;
  throw new VtokError(`weight ${t.name} is ${s.dtype}; the model expects ${t.dtype}`);
}

/** SHA-256 of a file, read in chunks (a 3 GB checkpoint is never held whole). */
export function sha256File(path: string, onBytes: (n: number) => void = () => {}): { sha256: string; bytes: number } {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = new Uint8Array(16 << 20);
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, bytes);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      bytes += n;
      onBytes(n);
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: h.digest('hex'), bytes };
}

/** The importer that recognises `src`, or a message listing what can be imported. */
export function findImporter(src: ImportSource): ReleaseImporter {
  const imp = importers.find((i) => i.detect(src));
  if (imp) return imp;
  throw new VtokError(
    `not a release vtok can import; it reads ${importers.map((i) => i.accepts).join('; or ')}`,
    src.path,
  );
}

/**
 * Imports a release (file or folder) as a model directory at `opts.out`: nothing is left there unless the whole
 * import succeeds. Returns what was written and the notes the importer made (also printed by the CLI).
 */
export function importModel(input: string, opts: ImportOptions): ImportResult {
  const out = resolve(opts.out);
  checkOutputDir(out, { option: '--out', inputs: [input, opts.config] });
  if (existsSync(out) && readdirSync(out).length > 0)
    throw new VtokError('already exists and is not empty: give a new folder for the model directory', opts.out);
  const src = openImportSource(input, opts.config);
  const notes: string[] = [];
  let closePlan: (() => void) | undefined;
  try {
    const plan = findImporter(src).plan(src, opts, (m) => notes.push(m));
    closePlan = plan.close;
    removeStaleTemps(dirname(out));
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      const step = join(tmp, 'checkpoints', 'step-0000000');
      mkdirSync(step, { recursive: true });
      const bar = progress('import', plan.tensors.length, { quiet: opts.quiet });
      writeSafetensorsStreamed(join(step, 'model.safetensors'), plan.tensors, (t) => bytesFor(t as ImportTensor), {
        metadata: { format: 'pt', importedFrom: plan.release },
        writeSync: opts.writeSync,
        progress: (done) => bar.update(done),
      });
      bar.stop();
      const total = plan.files.reduce((n, f) => n + statSync(f.path).size, 0);
      const hashBar = progress('sha256 (MB)', Math.ceil(total / 2 ** 20), { quiet: opts.quiet });
      let hashed = 0;
      const files = plan.files.map((f) => {
        const { sha256, bytes } = sha256File(f.path, (n) => {
          hashed += n;
          hashBar.update(Math.floor(hashed / 2 ** 20));
        });
        return {
          name: src.isFolder ? f.path.slice(src.path.length + 1) : basename(f.path),
          role: f.role,
          bytes,
          sha256,
        };
      });
      hashBar.stop();
      const imported = {
        release: plan.release,
        licence: plan.licence,
        source: opts.origin ?? { path: src.path },
        files,
        half: !!opts.half,
        ...plan.provenance,
        ...(notes.length ? { notes } : {}),
      };
      writeFileAtomic(join(tmp, 'config.json'), `${JSON.stringify({ ...plan.config, imported }, null, 2)}\n`);
      writeFileAtomic(join(step, 'state.json'), JSON.stringify({ step: 0, importedFrom: plan.release }));
      for (const p of ['latest', 'best'])
        writeFileAtomic(join(tmp, 'checkpoints', `${p}.json`), JSON.stringify({ dir: 'step-0000000', step: 0 }));
      if (existsSync(out)) rmdirSync(out);
      renameSync(tmp, out);
      const kind = (plan.config.model as { kind: string }).kind;
      const parameters = plan.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      const bytes = statSync(join(out, 'checkpoints', 'step-0000000', 'model.safetensors')).size;
      return { out, release: plan.release, licence: plan.licence, kind, parameters, bytes, notes, files };
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      // A write inside the temp folder names the folder the user gave, which is left as it was.
      if (e instanceof VtokError && e.file?.startsWith(tmp))
        throw new VtokError(`${e.message.slice(e.file.length + 2)}; nothing was written`, opts.out);
      throw systemError(e, opts.out);
    }
  } finally {
    closePlan?.();
    src.close();
  }
}
