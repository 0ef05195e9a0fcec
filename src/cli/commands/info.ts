import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { backend, defaultThreads } from '../../engine/core.js';
import { VtokError } from '../../util/errors.js';
import { probeVideo } from '../../io/video.js';
import { openTokenFile, type TokenSource, vocabBits } from '../../io/tokenfile.js';
import { isCodedTokenFile, openCodedTokens } from '../../codec/container.js';
import { openSafetensors, readSafetensorsHeader } from '../../io/safetensors-file.js';
import { toFloat32 } from '../../io/tensor-data.js';
import { codebookUsage } from '../../metrics/tokens.js';
import { INDEX_FILE, listShards, readShard, SHARD_VERSION, type ShardIndex } from '../../corpus/shards.js';

/**
 * `vtok info <file|folder>`: what a video/image, token file (.vtok/.vtkc), checkpoint (.safetensors), token shard
 * (.vtks) or shard index holds, or what a shard folder, model, run or checkpoint directory is. A file's kind is
 * sniffed from its first bytes, never the extension, so a mislabelled file is still read as what it is. Weights
 * with NaN or infinite values are named, and the command then fails: such a checkpoint is not a normal one.
 */
type Kind = 'tokens' | 'safetensors' | 'shard' | 'json' | 'video' | 'directory';

function sniff(path: string): Kind {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    throw new VtokError('no such file', path);
  }
  if (st.isDirectory()) return 'directory';
  if (st.size === 0) throw new VtokError('file is empty', path);
  const head = Buffer.alloc(9);
  const fd = openSync(path, 'r');
  const n = readSync(fd, head, 0, 9, 0);
  closeSync(fd);
  const magic = n >= 4 ? head.toString('latin1', 0, 4) : '';
  if (['VTOK', 'VTKC'].includes(magic)) return 'tokens';
  if (magic === 'VTKS') return 'shard';
  // safetensors: u64 header length, then the JSON header (its reader reports truncation in detail).
  if (n === 9 && head[8] === 0x7b && head.readBigUInt64LE(0) > 1n) return 'safetensors';
  if (/^\s*\{/.test(head.toString('latin1', 0, n))) return 'json';
  return 'video';
}

async function tokenInfo(path: string) {
  const f = isCodedTokenFile(path) ? openCodedTokens(path) : await openTokenFile(path);
  let clips = 0;
  let tokens = 0;
  const grids = new Map<string, number>();
  const ids: Int32Array[] = [];
  let idCount = 0;
  for await (const c of f.clips()) {
    clips++;
    tokens += c.ids.length;
    grids.set(c.grid.join('×'), (grids.get(c.grid.join('×')) ?? 0) + 1);
    // Codebook statistics on up to 4M ids; enough to see usage without holding a huge file.
    if (idCount < 1 << 22) {
      ids.push(c.ids);
      idCount += c.ids.length;
    }
  }
  const usage = ids.length ? codebookUsage(ids, f.header.vocabSize) : undefined;
  return {
    kind: 'tokens' as const,
    file: path,
    header: f.header,
    bitsPerToken: vocabBits(f.header.vocabSize),
    clips,
    tokens,
    grids: Object.fromEntries(grids),
    codebook: usage && {
      used: usage.used,
      usage: usage.usage,
      perplexity: usage.perplexity,
      entropyBits: usage.entropyBits,
      sampledTokens: usage.tokens,
    },
  };
}

/** Tensors holding NaN or ±Inf, with how many such values: read one tensor at a time, so memory stays bounded. */
function nonFinite(path: string): { name: string; count: number }[] {
  const file = openSafetensors(path);
  const out: { name: string; count: number }[] = [];
  try {
    for (const [name, t] of file.tensors) {
      if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) continue;
      const tensor = file.read(name);
      // F64 checked as it is: a finite double beyond float32's range is not a damaged weight
      const values = t.dtype === 'F64' ? new Float64Array(tensor.data.slice().buffer) : toFloat32(tensor);
      let count = 0;
      for (const v of values) if (!Number.isFinite(v)) count++;
      if (count) out.push({ name, count });
    }
  } finally {
    file.close();
  }
  return out;
}

/** The line for weights with NaN/Inf values (they make the command fail). */
function nonFiniteMessage(bad: { name: string; count: number }[]): string {
  const names = bad
    .slice(0, 5)
    .map((b) => b.name)
    .join(', ');
  const more = bad.length > 5 ? ', …' : '';
  const tensors = `${bad.length} tensor${bad.length > 1 ? 's' : ''}`;
  return `contains NaN/Inf in ${tensors}: ${names}${more} (damaged or diverged weights)`;
}

function checkpointInfo(path: string) {
  const h = readSafetensorsHeader(path);
  const tensors = [...h.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  const params = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  return {
    kind: 'safetensors' as const,
    file: path,
    tensors,
    parameters: params,
    bytes: h.dataSize,
    metadata: h.metadata,
    nonFinite: nonFinite(path),
  };
}

function shardInfo(path: string) {
  const { clips, skipped, vocabSize } = readShard(path);
  const grids = new Map<string, number>();
  for (const c of clips) grids.set(c.grid.join('×'), (grids.get(c.grid.join('×')) ?? 0) + 1);
  const usage = clips.length
    ? codebookUsage(
        clips.map((c) => c.ids),
        vocabSize,
      )
    : undefined;
  return {
    kind: 'shard' as const,
    file: path,
    vocabSize,
    bitsPerToken: vocabBits(vocabSize),
    clips: clips.length,
    tokens: clips.reduce((n, c) => n + c.ids.length, 0),
    captioned: clips.filter((c) => c.caption !== undefined).length,
    grids: Object.fromEntries(grids),
    skipped,
    codebook: usage && { used: usage.used, usage: usage.usage, perplexity: usage.perplexity },
  };
}

/** A shard index (index.json of `vtok tokenize --out`): the corpus it describes; `dir`: its folder (shards counted). */
function indexInfo(path: string, j: ShardIndex, dir?: string) {
  const grids = new Map<string, number>();
  for (const c of j.clips) grids.set(c.grid.join('×'), (grids.get(c.grid.join('×')) ?? 0) + 1);
  return {
    kind: 'shard-index' as const,
    file: path,
    tokenizer: j.tokenizer,
    corpus: j.corpus,
    clipFrames: j.clipFrames,
    size: j.size,
    channels: j.channels,
    ...(j.shardSize !== undefined ? { shardSize: j.shardSize } : {}),
    shards: j.shards.length,
    ...(dir ? { shardFiles: listShards(dir).length } : {}),
    clips: j.clips.length,
    captioned: j.clips.filter((c) => c.caption !== undefined).length,
    grids: Object.fromEntries(grids),
    skipped: j.skipped.length,
  };
}

function parseJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new VtokError('not valid JSON', path);
  }
}

const isShardIndex = (j: unknown): j is ShardIndex => {
  const x = j as ShardIndex | null;
  return !!x && x.version === SHARD_VERSION && !!x.tokenizer && [x.clips, x.shards, x.skipped].every(Array.isArray);
};

/** A JSON file: a shard index, or the config.json of a model or run directory (then that directory is described). */
function jsonInfo(path: string) {
  const j = parseJson(path) as { model?: { kind?: unknown } } | null;
  if (isShardIndex(j)) return indexInfo(path, j, basename(path) === INDEX_FILE ? dirname(path) : undefined);
  if (basename(path) === 'config.json' && typeof j?.model?.kind === 'string') return runInfo(dirname(path));
  throw new VtokError("a JSON file, but not a shard index (index.json) or a model's or run's config.json", path);
}

/** Leaf values of a config object as `a.b=v` pairs (arrays of numbers kept whole), for a one-line summary. */
function flatten(o: unknown, prefix = ''): string[] {
  if (o === null || typeof o !== 'object') return [`${prefix}=${typeof o === 'string' ? o : JSON.stringify(o)}`];
  if (Array.isArray(o)) return [`${prefix}=${o.every((v) => typeof v !== 'object') ? o.join(',') : `[${o.length}]`}`];
  return Object.entries(o).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

/** The checkpoints of a run: each step directory, which ones latest/best point to, and NaN/Inf in those two. */
function checkpointsOf(dir: string) {
  const root = join(dir, 'checkpoints');
  const steps = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^step-\d+$/.test(d))
        .sort()
    : [];
  const pointers: Record<string, string> = {};
  for (const which of ['latest', 'best']) {
    const p = join(root, `${which}.json`);
    if (!existsSync(p)) continue;
    const d = (parseJson(p) as { dir?: unknown } | null)?.dir;
    if (typeof d !== 'string' || !steps.includes(d)) {
      throw new VtokError(`points to ${JSON.stringify(d)}, which is not a checkpoint here`, p);
    }
    pointers[which] = d;
  }
  const used = [...new Set(Object.values(pointers))];
  const bad = used.flatMap((d) => stepInfo(join(root, d)).nonFinite.map((b) => ({ checkpoint: d, ...b })));
  return { steps, pointers, nonFinite: bad };
}

/** A model or run directory (config.json + checkpoints/): what model, how configured and trained, which checkpoints. */
function runInfo(dir: string) {
  const path = join(dir, 'config.json');
  const c = parseJson(path) as {
    model?: { kind?: unknown; config?: unknown };
    data?: unknown;
    train?: unknown;
    packed?: { from?: string };
    tokenizer?: unknown;
  } | null;
  if (typeof c?.model?.kind !== 'string') {
    throw new VtokError('names no model kind (model.kind): not a vtok model or run directory', path);
  }
  return {
    kind: 'model-directory' as const,
    file: dir,
    model: c.model.kind,
    packed: c.packed?.from !== undefined,
    ...(c.packed?.from !== undefined ? { packedFrom: c.packed.from } : {}),
    config: flatten(c.model.config ?? {}),
    ...(c.data ? { data: flatten(c.data) } : {}),
    ...(c.train ? { train: flatten(c.train) } : {}),
    ...(typeof c.tokenizer === 'string' ? { tokenizer: c.tokenizer } : {}),
    checkpoints: checkpointsOf(dir),
  };
}

/** One checkpoint directory (checkpoints/step-N): its step, weight files and NaN/Inf in them. */
function stepInfo(dir: string) {
  const state = parseJson(join(dir, 'state.json')) as { step?: unknown } | null;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  return {
    kind: 'checkpoint-directory' as const,
    file: dir,
    step: Number(state?.step),
    files: files.map((f) => ({ name: f, tensors: readSafetensorsHeader(join(dir, f)).tensors.size })),
    nonFinite: files.flatMap((f) => nonFinite(join(dir, f)).map((b) => ({ name: `${f}:${b.name}`, count: b.count }))),
  };
}

function directoryInfo(dir: string) {
  if (existsSync(join(dir, INDEX_FILE))) {
    const j = parseJson(join(dir, INDEX_FILE));
    if (!isShardIndex(j)) throw new VtokError('not a shard index (vtok tokenize … --out)', join(dir, INDEX_FILE));
    return indexInfo(dir, j, dir);
  }
  if (listShards(dir).length) {
    throw new VtokError(`a shard folder without its ${INDEX_FILE}: run the vtok tokenize that wrote it again`, dir);
  }
  if (existsSync(join(dir, 'config.json'))) return runInfo(dir);
  if (existsSync(join(dir, 'state.json'))) return stepInfo(dir);
  throw new VtokError('is a directory, but not a token shard folder, model, run or checkpoint directory', dir);
}

async function videoInfo(path: string) {
  try {
    return { kind: 'video' as const, file: path, ...(await probeVideo(path, { exact: true })) };
  } catch (e) {
    // Nothing recognised it: say every kind that was tried, not just video.
    if (e instanceof VtokError)
      e.message = e.message.replace(
        'not a video or image ffmpeg can read',
        'not a video, image, .vtok token file or .safetensors checkpoint',
      );
    throw e;
  }
}

/** The source record in words: frame size and rate, sample rate; whatever else it holds as JSON. */
function sourceText(src: TokenSource): string {
  const { fps, frameSize, sampleRate, channels, ...rest } = src;
  const parts = [
    frameSize ? `${frameSize[1]}×${frameSize[0]}` : '',
    fps !== undefined ? `at ${fps} fps` : '',
    sampleRate !== undefined
      ? `${sampleRate} Hz${channels ? `, ${channels} channel${channels > 1 ? 's' : ''}` : ''}`
      : '',
    Object.keys(rest).length ? JSON.stringify(rest) : '',
  ].filter(Boolean);
  return parts.length ? `; source ${parts.join(' ')}` : '';
}

type Info =
  | Awaited<ReturnType<typeof tokenInfo>>
  | ReturnType<typeof checkpointInfo>
  | Awaited<ReturnType<typeof videoInfo>>
  | ReturnType<typeof shardInfo>
  | ReturnType<typeof indexInfo>
  | ReturnType<typeof runInfo>
  | ReturnType<typeof stepInfo>;

const grid = (grids: Record<string, number>) =>
  Object.entries(grids)
    .map(([g, n]) => `${g}: ${n}`)
    .join(', ') || 'none';

const codebookLine = (c: { used: number; usage: number; perplexity: number }) =>
  `  codebook  ${c.used} codes used (${(c.usage * 100).toFixed(2)}%), perplexity ${c.perplexity.toFixed(1)}`;

function print(info: Info): void {
  const out: string[] = [`${info.file}`];
  if (info.kind === 'video') {
    out.push(
      `  ${info.isImage ? 'image' : 'video'} (${info.format}, ${info.codec})`,
      `  size      ${info.width}×${info.height}`,
    );
    if (!info.isImage)
      out.push(
        `  fps       ${+info.fps.toFixed(3)}`,
        `  frames    ${info.frames}`,
        `  duration  ${info.duration.toFixed(3)} s`,
      );
  } else if (info.kind === 'tokens') {
    const h = info.header;
    out.push(
      `  token file (.vtok), ${h.modality} tokens, tokenizer ${h.kind}, config ${h.configHash}`,
      `  vocabulary ${h.vocabSize} (${info.bitsPerToken} bits per token)`,
      `  grid      ${h.grid.join('×')} per clip${sourceText(h.source)}`,
      `  clips     ${info.clips} (${info.tokens} tokens; grids ${grid(info.grids)})`,
    );
    if (info.codebook) out.push(codebookLine(info.codebook));
    if (h.extra) out.push(`  extra     ${JSON.stringify(h.extra)}`);
  } else if (info.kind === 'safetensors') {
    out.push(
      `  safetensors checkpoint: ${info.tensors.length} tensors, ${info.parameters} values, ${info.bytes} bytes`,
    );
    const w = Math.max(0, ...info.tensors.map((t) => t.name.length));
    const bad = new Map(info.nonFinite.map((b) => [b.name, b.count]));
    for (const t of info.tensors) {
      const note = bad.has(t.name) ? `  ${bad.get(t.name)} NaN/Inf values` : '';
      out.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(4)} [${t.shape.join(', ')}]${note}`);
    }
    if (Object.keys(info.metadata).length) out.push(`  metadata  ${JSON.stringify(info.metadata)}`);
  } else if (info.kind === 'shard') {
    const first = info.skipped[0];
    out.push(
      `  token shard (.vtks) of vtok tokenize: vocabulary ${info.vocabSize} (${info.bitsPerToken} bits per token)`,
      `  clips     ${info.clips} (${info.tokens} tokens; grids ${grid(info.grids)}; ${info.captioned} captioned)`,
      `  skipped   ${info.skipped.length}${first ? ` (the first: ${first.source}: ${first.reason})` : ''}`,
    );
    if (info.codebook) out.push(codebookLine(info.codebook));
  } else if (info.kind === 'shard-index') {
    const t = info.tokenizer;
    out.push(
      `  token shards of vtok tokenize (${INDEX_FILE}): corpus ${info.corpus}`,
      `  tokenizer ${t.kind} ${t.identity.slice(0, 16)}, ` +
        `vocabulary ${t.vocabSize}; clips of ${info.clipFrames} frames` +
        ` at ${info.size} px, ${info.channels} channel${info.channels > 1 ? 's' : ''}`,
      `  clips     ${info.clips} (${info.captioned} captioned; grids ${grid(info.grids)}), ${info.skipped} skipped`,
      `  shards    ${info.shards}${info.shardSize !== undefined ? ` of up to ${info.shardSize} clips` : ''}`,
    );
    if (info.shardFiles !== undefined && info.shardFiles !== info.shards) {
      const how = 'run the same vtok tokenize again to rebuild it';
      out.push(`  note      the folder holds ${info.shardFiles} shard files, the index lists ${info.shards}: ${how}`);
    }
  } else if (info.kind === 'model-directory') {
    const ck = info.checkpoints;
    const what = info.packed ? `model directory (packed from ${info.packedFrom})` : 'run directory';
    out.push(`  ${what}: ${info.model}`, `  config    ${info.config.join(' ')}`);
    if (info.data) out.push(`  data      ${info.data.join(' ')}`);
    if (info.train) out.push(`  train     ${info.train.join(' ')}`);
    if (info.tokenizer) out.push(`  tokenizer ${info.tokenizer}`);
    const marks = (d: string) =>
      Object.entries(ck.pointers)
        .filter(([, p]) => p === d)
        .map(([w]) => w);
    const steps = ck.steps.map((d) => (marks(d).length ? `${d} (${marks(d).join(', ')})` : d));
    out.push(`  checkpoints ${steps.join(', ') || 'none'}`);
  } else {
    out.push(`  checkpoint directory: step ${info.step}`);
    for (const f of info.files) out.push(`  ${f.name}  ${f.tensors} tensors`);
  }
  console.log(out.join('\n'));
}

/** The tensors with NaN/Inf values a described thing holds, each named with its checkpoint or file. */
function nonFiniteOf(info: Info): { name: string; count: number }[] {
  if (info.kind === 'safetensors' || info.kind === 'checkpoint-directory') return info.nonFinite;
  if (info.kind === 'model-directory') {
    return info.checkpoints.nonFinite.map((b) => ({ name: `${b.checkpoint}/${b.name}`, count: b.count }));
  }
  return [];
}

/** The runtime this machine gets: backend, threads, and the int8 kernel family its CPU needs. */
function engineInfo() {
  const b = backend(),
    k = b.int8Kernels();
  return {
    kind: 'engine' as const,
    backend: b.name,
    threads: defaultThreads(),
    int8: { weights: k.weights, reason: k.reason },
  };
}

export function registerInfo(program: Command): void {
  program
    .command('info [path]')
    .description(
      'show what a video/image, token file (.vtok), checkpoint (.safetensors), token shard (.vtks) or shard index ' +
        'holds, or what a model, run, checkpoint or shard folder is; without one, the engine (backend, threads)',
    )
    .option('--json', 'machine-readable output')
    .action(async (file: string | undefined, opts: { json?: boolean }) => {
      if (file === undefined) {
        const e = engineInfo();
        if (opts.json) console.log(JSON.stringify(e, null, 2));
        else
          console.log(
            `engine    ${e.backend}, ${e.threads} threads\nint8      ${e.int8.weights} weights (${e.int8.reason})`,
          );
        return;
      }
      const kind = sniff(file);
      const info: Info =
        kind === 'tokens'
          ? await tokenInfo(file)
          : kind === 'safetensors'
            ? checkpointInfo(file)
            : kind === 'shard'
              ? shardInfo(file)
              : kind === 'json'
                ? jsonInfo(file)
                : kind === 'directory'
                  ? directoryInfo(file)
                  : await videoInfo(file);
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else print(info);
      const bad = nonFiniteOf(info);
      if (bad.length) throw new VtokError(nonFiniteMessage(bad), file);
    });
}
