import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { backend, defaultThreads } from '../../engine/core.js';
import { VtokError } from '../../util/errors.js';
import { probeVideo } from '../../io/video.js';
import { openTokenFile, type TokenSource, vocabBits } from '../../io/tokenfile.js';
import { isCodedTokenFile, openCodedTokens } from '../../codec/container.js';
import { readSafetensorsHeader } from '../../io/safetensors-file.js';
import { codebookUsage } from '../../metrics/tokens.js';

/**
 * `vtok info <file>`: what a video/image, token file (.vtok) or checkpoint (.safetensors) holds. The kind is
 * sniffed from the first bytes, never the extension, so a mislabelled file is still read as what it is.
 */
type Kind = 'tokens' | 'safetensors' | 'video';

function sniff(path: string): Kind {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new VtokError('no such file', path);
  }
  if (st.isDirectory()) throw new VtokError('is a directory, expected a video, image, .vtok or .safetensors file', path);
  if (st.size === 0) throw new VtokError('file is empty', path);
  const head = Buffer.alloc(9);
  const fd = openSync(path, 'r');
  const n = readSync(fd, head, 0, 9, 0);
  closeSync(fd);
  if (n >= 4 && ['VTOK', 'VTKC'].includes(head.toString('latin1', 0, 4))) return 'tokens';
  // safetensors: u64 header length, then the JSON header (its reader reports truncation in detail).
  if (n === 9 && head[8] === 0x7b && head.readBigUInt64LE(0) > 1n) return 'safetensors';
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
    codebook: usage && { used: usage.used, usage: usage.usage, perplexity: usage.perplexity, entropyBits: usage.entropyBits, sampledTokens: usage.tokens },
  };
}

function checkpointInfo(path: string) {
  const h = readSafetensorsHeader(path);
  const tensors = [...h.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  const params = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  return { kind: 'safetensors' as const, file: path, tensors, parameters: params, bytes: h.dataSize, metadata: h.metadata };
}

async function videoInfo(path: string) {
  try {
    return { kind: 'video' as const, file: path, ...(await probeVideo(path, { exact: true })) };
  } catch (e) {
    // Nothing recognised it: say every kind that was tried, not just video.
    if (e instanceof VtokError) e.message = e.message.replace('not a video or image ffmpeg can read', 'not a video, image, .vtok token file or .safetensors checkpoint');
    throw e;
  }
}

/** The source record in words: frame size and rate, sample rate; whatever else it holds as JSON. */
function sourceText(src: TokenSource): string {
  const { fps, frameSize, sampleRate, channels, ...rest } = src;
  const parts = [
    frameSize ? `${frameSize[1]}×${frameSize[0]}` : '',
    fps !== undefined ? `at ${fps} fps` : '',
    sampleRate !== undefined ? `${sampleRate} Hz${channels ? `, ${channels} channel${channels > 1 ? 's' : ''}` : ''}` : '',
    Object.keys(rest).length ? JSON.stringify(rest) : '',
  ].filter(Boolean);
  return parts.length ? `; source ${parts.join(' ')}` : '';
}

function print(info: Awaited<ReturnType<typeof tokenInfo>> | ReturnType<typeof checkpointInfo> | Awaited<ReturnType<typeof videoInfo>>): void {
  const out: string[] = [`${info.file}`];
  if (info.kind === 'video') {
    out.push(`  ${info.isImage ? 'image' : 'video'} (${info.format}, ${info.codec})`, `  size      ${info.width}×${info.height}`);
    if (!info.isImage) out.push(`  fps       ${+info.fps.toFixed(3)}`, `  frames    ${info.frames}`, `  duration  ${info.duration.toFixed(3)} s`);
  } else if (info.kind === 'tokens') {
    const h = info.header;
    out.push(
      `  token file (.vtok), ${h.modality} tokens, tokenizer ${h.kind}, config ${h.configHash}`,
      `  vocabulary ${h.vocabSize} (${info.bitsPerToken} bits per token)`,
      `  grid      ${h.grid.join('×')} per clip${sourceText(h.source)}`,
      `  clips     ${info.clips} (${info.tokens} tokens; grids ${Object.entries(info.grids).map(([g, n]) => `${g}: ${n}`).join(', ') || 'none'})`,
    );
    if (info.codebook) out.push(`  codebook  ${info.codebook.used} codes used (${(info.codebook.usage * 100).toFixed(2)}%), perplexity ${info.codebook.perplexity.toFixed(1)}`);
    if (h.extra) out.push(`  extra     ${JSON.stringify(h.extra)}`);
  } else {
    out.push(`  safetensors checkpoint: ${info.tensors.length} tensors, ${info.parameters} values, ${info.bytes} bytes`);
    const w = Math.max(0, ...info.tensors.map((t) => t.name.length));
    for (const t of info.tensors) out.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(4)} [${t.shape.join(', ')}]`);
    if (Object.keys(info.metadata).length) out.push(`  metadata  ${JSON.stringify(info.metadata)}`);
  }
  console.log(out.join('\n'));
}

/** The runtime this machine gets: backend, threads, and the int8 kernel family its CPU needs. */
function engineInfo() {
  const b = backend(), k = b.int8Kernels();
  return { kind: 'engine' as const, backend: b.name, threads: defaultThreads(), int8: { weights: k.weights, reason: k.reason } };
}

export function registerInfo(program: Command): void {
  program
    .command('info [file]')
    .description('show what a video/image, token file (.vtok) or checkpoint (.safetensors) holds; without a file, the engine (backend, threads, int8 kernels)')
    .option('--json', 'machine-readable output')
    .action(async (file: string | undefined, opts: { json?: boolean }) => {
      if (file === undefined) {
        const e = engineInfo();
        if (opts.json) console.log(JSON.stringify(e, null, 2));
        else console.log(`engine    ${e.backend}, ${e.threads} threads\nint8      ${e.int8.weights} weights (${e.int8.reason})`);
        return;
      }
      const kind = sniff(file);
      const info = kind === 'tokens' ? await tokenInfo(file) : kind === 'safetensors' ? checkpointInfo(file) : await videoInfo(file);
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else print(info);
    });
}
