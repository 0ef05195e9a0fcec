import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, mkdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { VtokError, check } from '../util/errors.js';
import { tempPath, writeFileAtomic } from '../util/atomic.js';
import { ffmpegPath, ffmpegReason, hasEncoder, passthroughArgs, runFfmpeg } from './ffmpeg.js';
import { type Frame, gridFrame } from './frame.js';
import { encodePng } from './png.js';

/**
 * Video and image files in and out through an ffmpeg subprocess. Decoding streams raw RGB frames through a pipe,
 * one frame at a time, so a long video is never held whole in memory; an image is a video of one frame.
 */

export interface VideoInfo {
  width: number;
  height: number;
  /** Frames per second as the container reports it (images: 0). */
  fps: number;
  /** Frame count: exact for images and when probed with `exact`, otherwise round(duration · fps). */
  frames: number;
  /** Seconds (images: 0). */
  duration: number;
  codec: string;
  format: string;
  isImage: boolean;
}

const IMAGE_FORMATS = /^(png_pipe|jpeg_pipe|bmp_pipe|webp_pipe|tiff_pipe|ppm_pipe|pgm_pipe|image2)$/;

function checkFile(path: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new VtokError('no such file', path);
  }
  if (st.isDirectory()) throw new VtokError('is a directory, expected a video or image file', path);
  if (st.size === 0) throw new VtokError('file is empty', path);
}

/** Size, frame rate, frame count and duration of a video or image, from ffmpeg's stream description. */
export async function probeVideo(path: string, opts: { exact?: boolean } = {}): Promise<VideoInfo> {
  checkFile(path);
  const r = await runFfmpeg(['-i', path]);
  const err = r.stderr;
  const fmt = /Input #0, ([^,]+(?:,[^,\s]+)*), from/.exec(err);
  const stream = /Stream #0:\d+[^:]*: Video: ([^\n]*)/.exec(err);
  // ffmpeg's own words (its usage complaints, probe details) say nothing to a user: one vtok line per case
  if (!fmt || /Invalid data found/.test(err)) throw new VtokError('not a video or image ffmpeg can read', path);
  const audio = /Stream #0:\d+[^:]*: Audio:/.test(err);
  if (!stream) throw new VtokError(`has no video stream${audio ? ' (audio only)' : ''}`, path);
  const desc = stream[1]!;
  const size = /[ ,](\d+)x(\d+)(?=[ ,[]|$)/.exec(desc);
  // a stream without a frame size: ffmpeg guessed the format from the extension alone (a text file named .png)
  if (!size) throw new VtokError('not a video or image ffmpeg can read', path);
  let width = Number(size[1]);
  let height = Number(size[2]);
  // ffmpeg auto-rotates on decode, so a 90° rotation tag swaps the decoded size.
  const rot = /rotate\s*:\s*(-?\d+)/.exec(err);
  if (rot && Math.abs(Number(rot[1])) % 180 === 90) [width, height] = [height, width];
  const format = fmt[1]!;
  const isImage = IMAGE_FORMATS.test(format);
  const fps = isImage ? 0 : rate(/([\d.]+k?) fps/.exec(desc)?.[1]) || rate(/([\d.]+k?) tbr/.exec(desc)?.[1]);
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(err);
  let duration = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : 0;
  let frames = isImage ? 1 : Math.round(duration * fps);
  if (!isImage && (opts.exact || frames <= 0)) {
    frames = await countFrames(path);
    if (!duration && fps) duration = frames / fps;
  }
  return { width, height, fps, frames, duration, codec: desc.split(/[ ,]/)[0]!, format, isImage };
}

function rate(s: string | undefined): number {
  if (!s) return 0;
  return s.endsWith('k') ? Number(s.slice(0, -1)) * 1000 : Number(s);
}

/** Exact frame count: a stream copy to the null muxer counts packets without decoding. */
async function countFrames(path: string): Promise<number> {
  const r = await runFfmpeg(['-i', path, '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-']);
  if (r.code !== 0) throw new VtokError(`could not count frames (${ffmpegReason(r.stderr, path)})`, path);
  const all = [...r.stderr.matchAll(/frame=\s*(\d+)/g)];
  return all.length ? Number(all[all.length - 1]![1]) : 0;
}

export interface ReadOptions {
  /** Resample to this frame rate first (ffmpeg's fps filter); frame indices below count at this rate. */
  fps?: number;
  /** Seek to this time in seconds before decoding (accurate seek). */
  start?: number;
  /** Skip this many frames (after seeking and resampling). */
  startFrame?: number;
  /** Keep every stride-th frame (default 1). */
  stride?: number;
  /** Stop after this many frames (after the stride). */
  maxFrames?: number;
  /** Resize so the short side is this many pixels, keeping the aspect ratio. */
  size?: number;
  /** Center-crop to [height, width] (after the resize); a number means a square. */
  crop?: number | [number, number];
}

/** The frame size readFrames will produce for a source of `width`×`height` under `opts`. */
export function outputSize(
  width: number,
  height: number,
  opts: ReadOptions,
  file?: string,
): { width: number; height: number; scaled?: [number, number] } {
  let w = width;
  let h = height;
  let scaled: [number, number] | undefined;
  if (opts.size) {
    check(Number.isInteger(opts.size) && opts.size > 0, `size must be a positive integer, got ${opts.size}`);
    if (w <= h) [w, h] = [opts.size, Math.max(1, Math.round((h * opts.size) / w))];
    else [w, h] = [Math.max(1, Math.round((w * opts.size) / h)), opts.size];
    scaled = [w, h];
  }
  if (opts.crop !== undefined) {
    const [ch, cw] = typeof opts.crop === 'number' ? [opts.crop, opts.crop] : opts.crop;
    check(ch > 0 && cw > 0 && ch <= h && cw <= w, `cannot center-crop ${cw}×${ch} from frames of ${w}×${h}`, file);
    [w, h] = [cw, ch];
  }
  return { width: w, height: h, scaled };
}

function filterChain(
  info: VideoInfo,
  opts: ReadOptions,
  out: { width: number; height: number; scaled?: [number, number] },
): string[] {
  const f: string[] = [];
  if (opts.fps && !info.isImage) f.push(`fps=fps=${opts.fps}`);
  const s0 = opts.startFrame ?? 0;
  const stride = opts.stride ?? 1;
  check(Number.isInteger(s0) && s0 >= 0, `startFrame must be a non-negative integer, got ${s0}`);
  check(Number.isInteger(stride) && stride >= 1, `stride must be a positive integer, got ${stride}`);
  if (s0 > 0 || stride > 1) f.push(`select='gte(n\\,${s0})*not(mod(n-${s0}\\,${stride}))'`);
  if (out.scaled) {
    const down = out.scaled[0] * out.scaled[1] < info.width * info.height;
    f.push(`scale=${out.scaled[0]}:${out.scaled[1]}:flags=${down ? 'area' : 'bicubic'}`);
  }
  const pre = out.scaled ?? [info.width, info.height];
  if (out.width !== pre[0] || out.height !== pre[1]) {
    f.push(
      `crop=${out.width}:${out.height}:${Math.floor((pre[0] - out.width) / 2)}:` +
        `${Math.floor((pre[1] - out.height) / 2)}`,
    );
  }
  return f;
}

/**
 * Decodes a video or image into RGB frames, streamed: each iteration step reads one frame from ffmpeg's pipe.
 * Breaking out of the loop stops ffmpeg.
 */
export async function* readFrames(path: string, opts: ReadOptions = {}): AsyncGenerator<Frame> {
  const info = await probeVideo(path);
  const out = outputSize(info.width, info.height, opts, path);
  const args = ['-hide_banner', '-nostdin', '-v', 'error'];
  if (opts.start) args.push('-ss', String(opts.start));
  args.push('-i', path, '-map', '0:v:0');
  const filters = filterChain(info, opts, out);
  if (filters.length) args.push('-vf', filters.join(','));
  if (opts.maxFrames !== undefined) {
    check(
      Number.isInteger(opts.maxFrames) && opts.maxFrames >= 0,
      `maxFrames must be a non-negative integer, got ${opts.maxFrames}`,
    );
    if (opts.maxFrames === 0) return;
    args.push('-frames:v', String(opts.maxFrames));
  }
  // Passthrough timing: the raw muxer must not duplicate or drop frames to keep a constant rate.
  args.push(...passthroughArgs(), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const proc = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-8192)));
  const exited = new Promise<number | null>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', resolve);
  });
  const frameBytes = out.width * out.height * 3;
  let buf = new Uint8Array(frameBytes);
  let fill = 0;
  let count = 0;
  let finished = false;
  try {
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(frameBytes - fill, chunk.length - off);
        buf.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === frameBytes) {
          count++;
          yield { width: out.width, height: out.height, data: buf };
          buf = new Uint8Array(frameBytes);
          fill = 0;
        }
      }
    }
    const code = await exited;
    finished = true;
    if (code !== 0) throw new VtokError(`decoding failed after ${count} frames (${ffmpegReason(stderr, path)})`, path);
    if (count === 0 && !(opts.startFrame || opts.start))
      throw new VtokError(`no frames could be decoded (${ffmpegReason(stderr, path)})`, path);
  } finally {
    if (!finished) {
      proc.kill('SIGKILL');
      await exited.catch(() => {});
    }
  }
}

/** Reads a clip of exactly `length` frames (after fps/start/stride); shorter sources are an error unless `pad`. */
export async function readClip(
  path: string,
  length: number,
  opts: Omit<ReadOptions, 'maxFrames'> & { pad?: boolean } = {},
): Promise<Frame[]> {
  check(Number.isInteger(length) && length > 0, `clip length must be a positive integer, got ${length}`);
  const frames: Frame[] = [];
  for await (const f of readFrames(path, { ...opts, maxFrames: length })) frames.push(f);
  if (frames.length < length) {
    if (!opts.pad || frames.length === 0) {
      throw new VtokError(`has ${frames.length} frames from the requested start, a clip needs ${length}`, path);
    }
    // Repeat the last frame, the usual way to fill out a short video.
    while (frames.length < length) frames.push(frames[frames.length - 1]!);
  }
  return frames;
}

/**
 * The last `count` frames of a video (all of them when it has fewer), without decoding the rest: ffmpeg seeks to a
 * little before them (by the probed duration, with a margin of a second or 8 frames for an inexact one) and only the
 * frames from there are decoded, only the last `count` held. Should the probe overstate the video (fewer frames
 * come after the seek than asked for), it reads again from the start.
 */
export async function readLastFrames(
  path: string,
  count: number,
  opts: Omit<ReadOptions, 'fps' | 'start' | 'startFrame' | 'stride' | 'maxFrames'> = {},
): Promise<Frame[]> {
  check(Number.isInteger(count) && count > 0, `frame count must be a positive integer, got ${count}`);
  const info = await probeVideo(path);
  const margin = Math.max(8, Math.ceil(info.fps));
  const start = info.isImage || !(info.fps > 0) ? 0 : (info.frames - count - margin) / info.fps;
  const tail = async (from: number) => {
    const kept: Frame[] = [];
    for await (const f of readFrames(path, { ...opts, ...(from > 0 ? { start: from } : {}) })) {
      kept.push(f);
      if (kept.length > count) kept.shift();
    }
    return kept;
  };
  const frames = await tail(start);
  return frames.length < count && start > 0 ? tail(0) : frames;
}

/** Reads every frame into memory (for short videos and images). */
export async function readAllFrames(path: string, opts: ReadOptions = {}): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const f of readFrames(path, opts)) frames.push(f);
  return frames;
}

export interface WriteOptions {
  /** Frame rate of the output (default 8). */
  fps?: number;
  /** Quality for mp4/mkv H.264 (CRF, lower is better; default 18). */
  crf?: number;
}

const CONTAINERS: Record<string, string> = {
  '.mp4': 'mp4',
  '.mkv': 'matroska',
  '.webm': 'webm',
  '.avi': 'avi',
  '.gif': 'gif',
  '.y4m': 'yuv4mpegpipe',
};

/** The extensions writeVideo writes (one list for the writer and for checks of an output before any work). */
export const VIDEO_EXTENSIONS: readonly string[] = Object.keys(CONTAINERS);

function codecArgs(ext: string, w: number, h: number, crf: number): string[] {
  // 4:2:0 needs even sizes; odd ones keep full chroma instead of being padded or cropped.
  const even = w % 2 === 0 && h % 2 === 0;
  switch (ext) {
    case '.mp4':
    case '.mkv':
      if (hasEncoder('libx264'))
        return ['-c:v', 'libx264', '-preset', 'medium', '-crf', String(crf), '-pix_fmt', even ? 'yuv420p' : 'yuv444p'];
      return ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p'];
    case '.webm':
      return ['-c:v', 'libvpx-vp9', '-crf', '30', '-b:v', '0', '-pix_fmt', even ? 'yuv420p' : 'yuv444p'];
    case '.avi':
      return ['-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p'];
    case '.gif':
      // One pass with a palette made from the clip itself: far better colours than the default web palette.
      return ['-filter_complex', 'split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=none'];
    case '.y4m':
      return ['-pix_fmt', 'yuv444p'];
    default:
      throw new VtokError(`cannot write video with extension '${ext}' (use ${Object.keys(CONTAINERS).join(', ')})`);
  }
}

/**
 * Encodes frames to a video file chosen by extension: .mp4/.mkv (H.264, or MPEG-4 part 2 where ffmpeg lacks
 * libx264), .webm (VP9), .avi (MPEG-4), .gif (delays are whole centiseconds, so rates not dividing 100 are
 * approximated), .y4m. Frames stream into ffmpeg's stdin; the file appears
 * atomically when encoding succeeded.
 */
export async function writeVideo(
  path: string,
  frames: Iterable<Frame> | AsyncIterable<Frame>,
  opts: WriteOptions = {},
): Promise<number> {
  const ext = extname(path).toLowerCase();
  const fps = opts.fps ?? 8;
  check(fps > 0, `fps must be positive, got ${fps}`);
  if (!(ext in CONTAINERS))
    throw new VtokError(`cannot write video with extension '${ext}' (use ${Object.keys(CONTAINERS).join(', ')})`, path);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  let proc: ReturnType<typeof spawn> | undefined;
  let exited: Promise<number | null> | undefined;
  let stderr = '';
  let w = 0;
  let h = 0;
  let count = 0;
  try {
    for await (const f of frames as AsyncIterable<Frame>) {
      if (!proc) {
        [w, h] = [f.width, f.height];
        const args = [
          '-hide_banner',
          '-nostdin',
          '-v',
          'error',
          '-y',
          '-f',
          'rawvideo',
          '-pix_fmt',
          'rgb24',
          '-s',
          `${w}x${h}`,
          '-r',
          String(fps),
          '-i',
          'pipe:0',
        ];
        args.push(...codecArgs(ext, w, h, opts.crf ?? 18), '-f', CONTAINERS[ext]!, tmp);
        const p = spawn(ffmpegPath(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
        proc = p;
        p.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-8192)));
        p.stdin!.on('error', () => {}); // an early ffmpeg exit surfaces through its exit code
        exited = new Promise((resolve, reject) => {
          p.on('error', reject);
          p.on('close', resolve);
        });
      }
      check(f.width === w && f.height === h, `frame ${count} is ${f.width}×${f.height}, expected ${w}×${h}`, path);
      check(f.data.length === w * h * 3, `frame ${count} has ${f.data.length} bytes, expected ${w * h * 3}`, path);
      count++;
      if (!proc.stdin!.write(f.data))
        await new Promise<void>((res) => proc!.stdin!.once('drain', res).once('close', res));
    }
    if (!proc) throw new VtokError('no frames to write', path);
    proc.stdin!.end();
    const code = await exited!;
    if (code !== 0) throw new VtokError(`encoding failed (${ffmpegReason(stderr, path)})`, path);
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    return count;
  } catch (e) {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    await exited?.catch(() => {});
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes one frame as a PNG file (atomically). */
export function writePng(path: string, frame: Frame): void {
  writeFileAtomic(path, encodePng(frame));
}

/** Writes frames as dir/<prefix>00000.png, 00001.png, … and returns the paths. */
export async function writePngSequence(
  dir: string,
  frames: Iterable<Frame> | AsyncIterable<Frame>,
  opts: { prefix?: string; digits?: number } = {},
): Promise<string[]> {
  const paths: string[] = [];
  for await (const f of frames as AsyncIterable<Frame>) {
    const p = join(dir, `${opts.prefix ?? 'frame_'}${String(paths.length).padStart(opts.digits ?? 5, '0')}.png`);
    writePng(p, f);
    paths.push(p);
  }
  return paths;
}

/** Writes frames side by side into one PNG, for looking at a clip at a glance. */
export function writeGrid(path: string, frames: Frame[], opts: { columns?: number; gap?: number } = {}): void {
  writePng(path, gridFrame(frames, opts));
}
