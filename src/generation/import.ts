import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type HubOptions, type HubSnapshot, hubSnapshot, isHubSpec } from '../io/hub.js';
import { openSafetensors } from '../io/safetensors-file.js';
import { type ImportOptions, type ImportResult, importModel, sha256File } from '../tokenizers/import.js';
import { VtokError } from '../util/errors.js';
import { parseLarpArConfig } from './larp-ar/config.js';
import { larpArFromHubFolder } from './larp-ar/model-dir.js';

/**
 * `vtok import` for every release vtok runs: the tokenizers (`importModel`: Open-MAGVIT2 checkpoints, LARP
 * folders) and LARP's autoregressive generators (LARP-L-long-AR, -AR-FP: a Hugging Face folder whose config.json is
 * the reference's ModelArgs), which need the imported LARP tokenizer their tokens decode with (`tokenizer`). A source
 * is a file, a folder, or `hf:owner/name[@revision]`, fetched from the Hugging Face Hub into the cache first
 * (offline: one message naming the files and where to put them); `file` picks one checkpoint of a repository that
 * holds several (only it and the small files are downloaded).
 */
export interface AnyImportOptions extends ImportOptions {
  file?: string;
  hub?: HubOptions;
  /** LARP AR: the vtok directory of its LARP tokenizer (`vtok import hf:hywang66/LARP-L-long-tokenizer`). */
  tokenizer?: string;
}

export async function importAny(source: string, o: AnyImportOptions): Promise<ImportResult & { hub?: HubSnapshot }> {
  let folder = source,
    origin: Record<string, unknown> = { path: resolve(source) },
    snap: HubSnapshot | undefined;
  if (isHubSpec(source)) {
    snap = await hubSnapshot(source, { quiet: o.quiet, ...o.hub, weightsFile: o.file });
    origin = { repository: snap.repo, revision: snap.revision };
    if (!isLarpArFolder(snap.dir)) {
      const input = o.file === undefined ? snap.dir : join(snap.dir, o.file);
      return { ...importModel(input, { ...o, origin: { repository: snap.repo, revision: snap.revision } }), hub: snap };
    }
    folder = snap.dir;
  } else if (!isLarpArFolder(source)) {
    if (o.file !== undefined) throw new VtokError('--file picks a file of an hf: repository', source);
    if (o.tokenizer !== undefined) throw new VtokError('--tokenizer is for LARP AR folders only', source);
    return importModel(source, o);
  }
  if (o.tokenizer === undefined)
    throw new VtokError(
      'a LARP AR model decodes with a LARP tokenizer: give its imported directory with --tokenizer ' +
        '(vtok import hf:hywang66/LARP-L-long-tokenizer --out <dir>)',
      source,
    );
  const names = ['config.json', 'model.safetensors'];
  const files = names.map((name) => ({ name, role: name.endsWith('.json') ? 'config' : 'weights' }));
  const hashed = files.map((f) => ({ ...f, ...sha256File(join(folder, f.name)) }));
  const out = resolve(o.out);
  const hub = larpArFromHubFolder(folder, out, {
    tokenizer: o.tokenizer,
    copyTokenizer: true,
    source: { ...origin, licence: 'MIT', files: hashed },
  });
  const w = openSafetensors(hub.weightsFile);
  w.close();
  const fp = hub.config.frame_prediction;
  return {
    out,
    release: fp ? 'LARP AR frame prediction' : 'LARP AR class-conditional',
    licence: 'MIT',
    kind: 'larp-ar',
    parameters: [...w.tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0),
    bytes: hashed.reduce((a, f) => a + f.bytes, 0),
    notes: [],
    files: hashed.map(({ name, role, bytes, sha256 }) => ({ name, role, bytes, sha256 })),
    ...(snap ? { hub: snap } : {}),
  };
}

/** A folder whose config.json reads as LARP AR's ModelArgs (flat, or wrapped as {"config": …}). */
function isLarpArFolder(folder: string): boolean {
  const path = join(folder, 'config.json');
  if (!existsSync(path)) return false;
  try {
    const raw = JSON.parse(readFileSync(path, 'utf8'));
    const c = raw?.config && Object.keys(raw).length === 1 ? raw.config : raw;
    parseLarpArConfig(c, path);
    return true;
  } catch {
    // not JSON, or not ModelArgs: not a LARP AR folder; the tokenizer importers say what is wrong with it
    return false;
  }
}
