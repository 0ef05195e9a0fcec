import {
  closeSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CodedTokenWriter, isCodedTokenFile, openCodedTokens } from '../codec/container.js';
import { IMAGE_EXTS, VIDEO_EXTS } from '../data/folder.js';
import type { Precision } from '../engine/core.js';
import { framesToClip } from '../io/clip.js';
import { checkSample, clipLayout, layoutFrames } from '../io/clip-layout.js';
import { type ClipTensor, tensorToClips, type Frame } from '../io/frame.js';
import { shippedModel, shippedTokenizers } from '../io/shipped.js';
import { hashConfig, openTokenFile, type TokenClip, type TokenFileHeader, TokenFileWriter } from '../io/tokenfile.js';
import { probeVideo, readClip, readFrames, writeVideo } from '../io/video.js';
import { removeOwnTemps } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';
import { type Interrupt, Interrupted, watchInterrupts } from '../util/interrupt.js';
import { STDOUT } from '../util/output-path.js';
import { progress } from '../util/progress.js';
import { decodeTokens, encodeClips } from './batch.js';
import { buildTokenizer, loadTokenizer } from './load.js';
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
function toInput(
  tok: Tokenizer,
  frames: Frame[],
  gray: boolean | undefined,
  source: string,
): { input: ClipTensor; converted: boolean } {
  const fit = framesToClip(frames, tok.channels ?? 3, gray, source);
  return { input: { data: fit.data, shape: fit.shape }, converted: fit.converted };
}

/** Whether a video is gray: its first frame has R = G = B everywhere. */
async function isGray(input: string): Promise<boolean> {
  const [f] = await readClip(input, 1);
  for (let i = 0; i < f!.data.length; i += 3)
    if (f!.data[i] !== f!.data[i + 1] || f!.data[i] !== f!.data[i + 2]) return false;
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
      if (m?.kind === kind && hashConfig(buildTokenizer(dir).tokenizer.config) === configHash) return dir;
    } catch {
      // an unreadable candidate is simply not the one
    }
  }
  return undefined;
}

/** "-" as an input: standard input. */
export const STDIN = '-';

/** A token file's name: .vtok (ids bit-packed) or .vtkc (entropy coded); video names get a pointer to decode. */
function checkTokenOutput(output: string): void {
  if (output === STDOUT) return;
  const ext = extname(output).toLowerCase();
  if (ext === '.vtok' || ext === '.vtkc') return;
  const media = VIDEO_EXTS.has(ext) ? 'video' : IMAGE_EXTS.has(ext) ? 'image' : undefined;
  const make = media === 'video' ? 'a video format: to make video' : 'an image format: to make images';
  const hint = media ? `; ${ext} is ${make} from tokens, use \`vtok decode\`` : '';
  throw new VtokError(`encode writes a token file, named .vtok or .vtkc (or - for standard output)${hint}`, output);
}

/** What a stopped command did not write, for its message. */
const notWritten = (output: string) =>
  output === STDOUT ? 'nothing was written to standard output' : `${output} was not written`;

/** Encode's or decode's work on `path`; `scratch()` is the private temp folder (made on first use). */
type Work<T> = (path: string, stop: Interrupt, scratch: () => string) => Promise<T>;

/**
 * Runs `work` (encode or decode) under one interrupt guard, set up before any file is made: Ctrl-C/SIGTERM asks
 * `work` to stop at its next `stop.poll()` (after the clip in progress); a second signal removes this process's
 * temp files beside `output` and its private temp folder, then ends it at once. An error after a signal (ffmpeg
 * gets a terminal's Ctrl-C too, and dies of it) is reported as the stop it is. `work` gets the input as a path:
 * standard input ("-") is copied to the private folder first, as both read their input more than once; errors
 * then name it "standard input".
 */
async function guarded<T>(input: string, output: string, what: string, work: Work<T>): Promise<T> {
  let dir: string | undefined;
  const scratch = () => (dir ??= mkdtempSync(join(tmpdir(), 'vtok-pipe-')));
  const stop = watchInterrupts(`stopping after this clip; ${what}`, () => {
    if (output !== STDOUT) removeOwnTemps(output);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  let copy: string | undefined;
  try {
    if (input === STDIN) copy = await copyStdin(join(scratch(), 'input'), stop);
    return await work(copy ?? input, stop, scratch);
  } catch (e) {
    if (stop.signal && !(e instanceof Interrupted)) {
      throw new Interrupted(stop.signal, `stopped; ${notWritten(output)}`);
    }
    if (copy && e instanceof Error) e.message = e.message.split(copy).join('standard input');
    throw e;
  } finally {
    stop.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Standard input, to its end, into the file `path` (a signal stops the copy between chunks). */
async function copyStdin(path: string, stop: Interrupt): Promise<string> {
  if (process.stdin.isTTY) {
    const example = 'vtok encode clip.mp4 -o - | vtok decode - -o clip.mp4';
    throw new VtokError(`- reads standard input, which is a terminal here; pipe a file in (e.g. ${example})`);
  }
  const fd = openSync(path, 'w');
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
      if (stop.signal) throw new Interrupted(stop.signal, 'stopped while reading standard input; nothing was written');
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/**
 * Encodes a video or image (a file, or "-" for standard input) into a token file: `.vtkc` (ids entropy coded,
 * src/codec) or `.vtok` (ids bit-packed), or standard output (`output` = "-", a .vtok).
 */
export async function encodeFile(input: string, output: string, o: EncodeFileOptions = {}): Promise<EncodeFileResult> {
  checkTokenOutput(output);
  return guarded(input, output, 'no token file will be written', (source, stop, scratch) =>
    encodeFrom({ source, input, output, stop, scratch }, o),
  );
}

interface EncodeJob {
  source: string;
  input: string;
  output: string;
  stop: Interrupt;
  scratch: () => string;
}

/** encodeFile's work: `source` is the file to read, `input` its name for messages. */
async function encodeFrom(job: EncodeJob, o: EncodeFileOptions): Promise<EncodeFileResult> {
  const { source, input, output, stop, scratch } = job;
  const info = await probeVideo(source);
  const model = o.model ?? shippedModel((await isGray(source)) ? 'gray video' : 'colour video').path;
  const { tokenizer: tok } = loadTokenizer(model);
  setTokenizerPrecision(tok, o.precision ?? 'fp32');
  const size = o.size ?? runSize(model) ?? Math.min(info.width, info.height);
  const stride = spatialStride(tok);
  if (size % stride !== 0) {
    const lo = Math.max(stride, Math.floor(size / stride) * stride);
    throw new VtokError(
      `frame size ${size} is not a multiple of the tokenizer's ` +
        `spatial stride ${stride} (try --size ${lo} or ${lo + stride})`,
      input,
    );
  }
  const clipLen = tok.clipFrames;
  const total = info.isImage ? 1 : info.frames;
  let grid: number[];
  try {
    grid = tok.grid([tok.channels ?? 3, clipLen, size, size]).shape;
  } catch (e) {
    throw new VtokError(`--size ${size} does not fit this model: ${(e as Error).message}`);
  }
  if (grid.some((d) => !Number.isInteger(d) || d <= 0))
    throw new VtokError(`--size ${size} gives no whole token grid for this model (got ${grid.join('×')})`, model);
  // Standard output cannot take an atomic write: the file is made in the private temp folder, then copied out.
  const path = output === STDOUT ? join(scratch(), 'out.vtok') : output;
  const notes: string[] = [];
  if (info.width !== size || info.height !== size)
    notes.push(
      `frames ${info.width}×${info.height} resized and center-cropped to ` +
        `${size}×${size}${o.size ? '' : " (the model's training size; --size to change)"}`,
    );
  const header: TokenFileHeader = {
    modality: tok.modality,
    kind: tok.kind,
    configHash: hashConfig(tok.config),
    vocabSize: tok.vocabSize,
    grid,
    source: { fps: info.fps, frameSize: [info.height, info.width] as [number, number] },
    extra: { model: resolve(model), size, clipFrames: clipLen, frames: total },
  };
  const writer =
    output !== STDOUT && extname(output).toLowerCase() === '.vtkc'
      ? new CodedTokenWriter(path, header)
      : new TokenFileWriter(path, header);
  const bar = progress('encode', Math.max(1, Math.ceil(total / clipLen)), { quiet: o.quiet });
  let buf: Frame[] = [],
    clips = 0,
    frames = 0;
  const flush = () => {
    // a short last clip is padded with its last frame; extra.frames says how many are real
    while (buf.length < clipLen) buf.push(buf[buf.length - 1]!);
    const { input: x, converted } = toInput(tok, buf, o.gray, input);
    if (converted && !notes.some((n) => n.startsWith('colour'))) notes.push('colour converted to gray (--gray)');
    writer.writeClip(encodeClips(tok, x).ids, grid);
    bar.update(++clips);
    buf = [];
  };
  try {
    for await (const f of readFrames(source, { size, crop: size })) {
      buf.push(f);
      frames++;
      if (buf.length === clipLen) {
        flush();
        if (await stop.poll()) {
          throw new Interrupted(stop.signal!, `stopped after ${clips} clips; ${notWritten(output)}`);
        }
      }
    }
    if (buf.length) flush();
    if (frames === 0) throw new VtokError('no frames decoded', input);
    writer.close();
    if (output === STDOUT) await pipeline(createReadStream(path), process.stdout, { end: false });
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    bar.stop();
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
 * Decodes a token file (.vtok or .vtkc; "-" for standard input) to a video or image, its clips joined and laid out
 * as its header records (io/clip-layout: a generated video with its extensions, samples side by side); returns the
 * model used and the frames written. Ctrl-C/SIGTERM stops after the clip in progress; writeVideo then removes its
 * partial file.
 */
export async function decodeFile(file: string, output: string, o: DecodeFileOptions = {}): Promise<DecodeFileResult> {
  return guarded(file, output, 'no video will be written', (path, stop) => decodeFrom(path, output, o, stop));
}

async function decodeFrom(file: string, output: string, o: DecodeFileOptions, stop: Interrupt) {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) throw new VtokError('no such file', file);
  if (st.isDirectory()) throw new VtokError('is a directory, expected a token file (.vtok or .vtkc)', file);
  const tf = isCodedTokenFile(file) ? openCodedTokens(file) : await openTokenFile(file);
  // closed on every path: a refused model must not leave the file handle to the garbage collector
  try {
    const h = tf.header;
    const model = o.model ?? modelFor(h.kind, h.configHash, h.extra?.model as string | undefined);
    if (!model)
      throw new VtokError(
        `no --model given, and neither the model the token file records (${String(h.extra?.model ?? 'none')}) ` +
          `nor a shipped one is its ${h.kind} tokenizer with config ${h.configHash}`,
        file,
      );
    const { tokenizer: tok } = loadTokenizer(model);
    setTokenizerPrecision(tok, o.precision ?? 'fp32');
    if (tok.kind !== h.kind || hashConfig(tok.config) !== h.configHash) {
      throw new VtokError(
        `tokens were made by a ${h.kind} tokenizer with config ${h.configHash}; ` +
          `${model} is ${tok.kind} with config ${hashConfig(tok.config)}`,
        file,
      );
    }
    const layout = clipLayout(h.extra, file);
    checkSample(layout, o.sample, file);
    let written = 0;
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
    const n = await writeVideo(output, frames(), { fps: o.fps ?? (h.source.fps || 8) });
    return { model, frames: n };
  } finally {
    await tf.close();
  }
}
