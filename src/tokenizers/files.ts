import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CodedTokenWriter, isCodedTokenFile, openCodedTokens } from '../codec/container.js';
import type { Precision } from '../engine/core.js';
import { framesToClip } from '../io/clip.js';
import { checkSample, clipLayout, layoutFrames } from '../io/clip-layout.js';
import { type ClipTensor, tensorToClips, type Frame } from '../io/frame.js';
import { shippedModel, shippedTokenizers } from '../io/shipped.js';
import { hashConfig, openTokenFile, type TokenClip, type TokenFileHeader, TokenFileWriter } from '../io/tokenfile.js';
import { probeVideo, readClip, readFrames, writeVideo } from '../io/video.js';
import { VtokError } from '../util/errors.js';
import { Interrupted, watchInterrupts } from '../util/interrupt.js';
import { STDOUT } from '../util/output-path.js';
import { progress } from '../util/progress.js';
import { decodeTokens, encodeClips } from './batch.js';
import { loadTokenizer } from './load.js';
import { setTokenizerPrecision, type Tokenizer } from './tokenizer.js';

/**
 * Files through a tokenizer (`vtok encode`, `vtok decode`): a video goes to a token file clip by clip (streamed, so
 * memory stays bounded whatever the length), and a token file goes back to frames. Both stop cleanly on
 * Ctrl-C/SIGTERM after the clip in progress and then write nothing: a token file or video is whole or absent.
 */
export interface EncodeFileOptions {
  /** A tokenizer run directory; default: the shipped model for gray video when the input is gray, else colour. */
  model?: string;
  /** Resize the short side and center-crop to this square size (default: the model's training size). */
  size?: number;
  /** Convert colour input for a model trained on gray clips (refused otherwise; io/clip.ts). */
  gray?: boolean;
  /** Inference precision (default fp32). */
  precision?: Precision;
  /** No progress bar. */
  quiet?: boolean;
}

export interface EncodeFileResult {
  model: string;
  kind: string;
  clips: number;
  /** Frames read (the last clip is padded to a whole clip; the token file records the real count). */
  frames: number;
  grid: number[];
  tokensPerClip: number;
  vocabSize: number;
  /** What was done to the input on the way (resized, colour converted), one line each. */
  notes: string[];
}

function runSize(runDir: string): number | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).data?.size;
  } catch {
    return undefined;
  }
}

/** Frames of one clip → the tokenizer's input clip (see fitChannels for gray models). */
function toInput(tok: Tokenizer, frames: Frame[], gray: boolean | undefined, source: string): { input: ClipTensor; converted: boolean } {
  const fit = framesToClip(frames, tok.channels ?? 3, gray, source);
  return { input: { data: fit.data, shape: fit.shape }, converted: fit.converted };
}

/** Whether a video is gray: its first frame has R = G = B everywhere. */
async function isGray(input: string): Promise<boolean> {
  const [f] = await readClip(input, 1);
  for (let i = 0; i < f!.data.length; i += 3) if (f!.data[i] !== f!.data[i + 1] || f!.data[i] !== f!.data[i + 2]) return false;
  return true;
}

/**
 * Pixels per token along height and width (grids of rank 3: [t, h, w]); 1 for tokenizers without a spatial grid or
 * with a fixed input size (LARP), which check sizes themselves.
 */
function spatialStride(tok: Tokenizer): number {
  try {
    const g = tok.grid([tok.channels ?? 3, tok.clipFrames, 1024, 1024]).shape;
    return g.length === 3 ? 1024 / g[2]! : 1;
  } catch {
    return 1;
  }
}

/**
 * The model a token file was made with: the one it records, else a shipped one, whichever has its kind and config
 * hash (so token files still decode after the repository moved).
 */
function modelFor(kind: string, configHash: string, recorded?: string): string | undefined {
  for (const dir of [recorded, ...shippedTokenizers().map((m) => m.path)]) {
    if (!dir || !existsSync(join(dir, 'config.json'))) continue;
    try {
      const m = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).model;
      if (m?.kind === kind && hashConfig(loadTokenizer(dir).tokenizer.config) === configHash) return dir;
    } catch {
      // an unreadable candidate is simply not the one
    }
  }
  return undefined;
}

/**
 * Encodes a video or image into a token file: `.vtkc` (ids entropy coded, src/codec) or anything else (`.vtok`, ids
 * bit-packed), or standard output (`output` = "-", a .vtok).
 */
export async function encodeFile(input: string, output: string, o: EncodeFileOptions = {}): Promise<EncodeFileResult> {
  const info = await probeVideo(input);
  const model = o.model ?? shippedModel((await isGray(input)) ? 'gray video' : 'colour video').path;
  const { tokenizer: tok } = loadTokenizer(model);
  setTokenizerPrecision(tok, o.precision ?? 'fp32');
  const size = o.size ?? runSize(model) ?? Math.min(info.width, info.height);
  const stride = spatialStride(tok);
  if (size % stride !== 0) {
    const lo = Math.max(stride, Math.floor(size / stride) * stride);
    throw new VtokError(`frame size ${size} is not a multiple of the tokenizer's spatial stride ${stride} (try --size ${lo} or ${lo + stride})`, input);
  }
  const clipLen = tok.clipFrames;
  const total = info.isImage ? 1 : info.frames;
  let grid: number[];
  try {
    grid = tok.grid([tok.channels ?? 3, clipLen, size, size]).shape;
  } catch (e) {
    throw new VtokError(`--size ${size} does not fit this model: ${(e as Error).message}`);
  }
  if (grid.some((d) => !Number.isInteger(d) || d <= 0)) throw new VtokError(`--size ${size} gives no whole token grid for this model (got ${grid.join('×')})`, model);
  // Standard output cannot take an atomic write: the file is made in a private temp folder, then copied out.
  const tmpDir = output === STDOUT ? mkdtempSync(join(tmpdir(), 'vtok-encode-')) : undefined;
  const path = tmpDir ? join(tmpDir, 'out.vtok') : output;
  const notes: string[] = [];
  if (info.width !== size || info.height !== size) notes.push(`frames ${info.width}×${info.height} resized and center-cropped to ${size}×${size}${o.size ? '' : ' (the model\'s training size; --size to change)'}`);
  // Ctrl-C/SIGTERM: stop after the clip in progress and write nothing (a token file is whole or absent). Set up
  // before the writer's temp file exists; the cleanup can only run from the event loop, after `writer` is made.
  const stop = watchInterrupts('stopping after this clip; no token file will be written', () => {
    writer.abort();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  });
  const header: TokenFileHeader = {
    modality: tok.modality, kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid, source: { fps: info.fps, frameSize: [info.height, info.width] as [number, number] },
    extra: { model: resolve(model), size, clipFrames: clipLen, frames: total },
  };
  const writer = output !== STDOUT && extname(output).toLowerCase() === '.vtkc' ? new CodedTokenWriter(path, header) : new TokenFileWriter(path, header);
  const bar = progress('encode', Math.max(1, Math.ceil(total / clipLen)), { quiet: o.quiet });
  let buf: Frame[] = [], clips = 0, frames = 0;
  const flush = () => {
    // a short last clip is padded with its last frame; extra.frames says how many are real
    while (buf.length < clipLen) buf.push(buf[buf.length - 1]);
    const { input: x, converted } = toInput(tok, buf, o.gray, input);
    if (converted && !notes.some((n) => n.startsWith('colour'))) notes.push('colour converted to gray (--gray)');
    writer.writeClip(encodeClips(tok, x).ids, grid);
    bar.update(++clips);
    buf = [];
  };
  try {
    for await (const f of readFrames(input, { size, crop: size })) {
      buf.push(f);
      frames++;
      if (buf.length === clipLen) {
        flush();
        if (await stop.poll()) throw new Interrupted(stop.signal!, `stopped after ${clips} clips; ${output} was not written`);
      }
    }
    if (buf.length) flush();
    if (frames === 0) throw new VtokError('no frames decoded', input);
    writer.close();
    if (tmpDir) await pipeline(createReadStream(path), process.stdout, { end: false });
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    stop.dispose();
    bar.stop();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
  const tokensPerClip = grid.reduce((a, b) => a * b, 1);
  return { model, kind: tok.kind, clips, frames, grid, tokensPerClip, vocabSize: tok.vocabSize, notes };
}

export interface DecodeFileOptions {
  /** The tokenizer run directory; default: the one the token file records, else a shipped one with its config. */
  model?: string;
  /** Frame rate of the output (default: the source's). */
  fps?: number;
  /** Inference precision (default fp32). */
  precision?: Precision;
  /** Of a file with several samples (`vtok generate --samples`), this one alone (1 = the leftmost); default: all. */
  sample?: number;
}

export interface DecodeFileResult {
  model: string;
  /** Frames written. */
  frames: number;
}

/**
 * Decodes a token file (.vtok or .vtkc) to a video or image, its clips joined and laid out as its header records
 * (io/clip-layout: a generated video with its extensions, samples side by side); returns the model used and the
 * frames written.
 */
export async function decodeFile(file: string, output: string, o: DecodeFileOptions = {}): Promise<DecodeFileResult> {
  const tf = isCodedTokenFile(file) ? openCodedTokens(file) : await openTokenFile(file);
  const h = tf.header;
  const model = o.model ?? modelFor(h.kind, h.configHash, h.extra?.model as string | undefined);
  if (!model) throw new VtokError(`no --model given, and neither the model the token file records (${String(h.extra?.model ?? 'none')}) nor a shipped one is its ${h.kind} tokenizer with config ${h.configHash}`, file);
  const { tokenizer: tok } = loadTokenizer(model);
  setTokenizerPrecision(tok, o.precision ?? 'fp32');
  if (tok.kind !== h.kind || hashConfig(tok.config) !== h.configHash) {
    throw new VtokError(`tokens were made by a ${h.kind} tokenizer with config ${h.configHash}; ${model} is ${tok.kind} with config ${hashConfig(tok.config)}`, file);
  }
  const layout = clipLayout(h.extra, file);
  checkSample(layout, o.sample, file);
  let written = 0;
  // Ctrl-C/SIGTERM: stop after the clip in progress; writeVideo then removes its partial file.
  const stop = watchInterrupts('stopping after this clip; no video will be written');
  const decode = async (clip: TokenClip): Promise<Frame[]> => {
    if (await stop.poll()) {
      throw new Interrupted(stop.signal!, `stopped after ${written} frames; ${output} was not written`);
    }
    const video = decodeTokens(tok, { ids: clip.ids, n: 1, grid: clip.grid });
    return tensorToClips(video.data, video.shape)[0]!;
  };
  async function* frames(): AsyncGenerator<Frame> {
    for await (const f of layoutFrames(tf.clips(), layout, decode, { sample: o.sample, file })) {
      written++;
      yield f;
    }
  }
  const n = await writeVideo(output, frames(), { fps: o.fps ?? (h.source.fps || 8) }).finally(() => stop.dispose());
  return { model, frames: n };
}
