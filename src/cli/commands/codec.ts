import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { CodedTokenWriter, isCodedTokenFile, openCodedTokens } from '../../codec/container.js';
import * as E from '../../engine/index.js';
import { type ClipTensor, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, openTokenFile, type TokenFileHeader, TokenFileWriter } from '../../io/tokenfile.js';
import { probeVideo, readClip, readFrames, writeVideo } from '../../io/video.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { loadTokenizer } from '../../tokenizers/registry.js';
import { setTokenizerPrecision, type Tokenizer } from '../../tokenizers/tokenizer.js';
import { VtokError } from '../../util/errors.js';
import { Interrupted, watchInterrupts } from '../../util/interrupt.js';
import { checkOutputFile, STDOUT } from '../../util/output-path.js';
import { progress } from '../../util/progress.js';
import { framesToClip } from '../../io/clip.js';
import { GRAY_HELP, int, num, oneOf } from '../options.js';
import { SHIPPED_MODEL, SHIPPED_NATURAL_MODEL } from './demo.js';

/**
 * `vtok encode` and `vtok decode`: a video goes to a .vtok token file clip by clip (streamed, so memory stays
 * bounded whatever the length), and a token file goes back to frames.
 */
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
  for (const dir of [recorded, SHIPPED_NATURAL_MODEL, SHIPPED_MODEL]) {
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

/** `--precision fp32|int8`: the inference precision of a tokenizer's encode/decode. */
export const parsePrecision = oneOf<E.Precision>('--precision', 'fp32', 'int8');

const PRECISION_HELP = 'inference precision: fp32, or int8 (quantized convolutions, calibrated on the first clip)';

export function registerCodec(program: Command): void {
  program
    .command('encode')
    .description('encode a video or image into a .vtok token file with a trained tokenizer')
    .argument('<input>', 'video or image file')
    .option('--model <run>', 'run directory of a trained tokenizer (default: the shipped natural-video model for colour input, the Moving MNIST one for gray)')
    .requiredOption('-o, --output <file>', 'token file to write: .vtok (ids bit-packed) or .vtkc (ids entropy coded), or - for standard output (.vtok)')
    .option('--size <px>', 'resize the short side and center-crop to this square size (default: the training size)', int('--size', { min: 8, max: 4096 }))
    .option('--gray', GRAY_HELP)
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, o: { model?: string; output: string; size?: number; gray?: boolean; precision: E.Precision; json?: boolean }) => {
      const output = checkOutputFile(o.output, { option: '-o', stdout: true });
      const info = await probeVideo(input);
      const model = o.model ?? ((await isGray(input)) ? SHIPPED_MODEL : SHIPPED_NATURAL_MODEL);
      const { tokenizer: tok } = loadTokenizer(model);
      setTokenizerPrecision(tok, o.precision);
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
      // .vtkc: the ids entropy coded (src/codec); anything else: the bit-packed .vtok token file
      const writer = output !== STDOUT && extname(output).toLowerCase() === '.vtkc' ? new CodedTokenWriter(path, header) : new TokenFileWriter(path, header);
      const bar = progress('encode', Math.max(1, Math.ceil(total / clipLen)), { quiet: o.json });
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
            if (await stop.poll()) throw new Interrupted(stop.signal!, `stopped after ${clips} clips; ${o.output} was not written`);
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
      const summary = { output: o.output, kind: tok.kind, precision: o.precision, clips, frames, tokensPerClip: grid.reduce((a, b) => a * b, 1), vocabSize: tok.vocabSize, converted: notes };
      // With -o - the tokens own standard output; the summary goes to stderr.
      const say = (line: string) => (tmpDir ? process.stderr.write(`${line}\n`) : console.log(line));
      if (!o.json) for (const n of notes) process.stderr.write(`vtok: note: ${n}\n`);
      say(o.json ? JSON.stringify(summary) : `${input}: ${frames} frames → ${clips} clips × ${summary.tokensPerClip} tokens (vocabulary ${tok.vocabSize}) → ${o.output === STDOUT ? 'standard output' : o.output}`);
    });

  program
    .command('decode')
    .description('decode a .vtok token file back to video (mp4, gif, webm, …) or an image')
    .argument('<tokens>', 'token file (.vtok or .vtkc)')
    .requiredOption('-o, --output <file>', 'video or image to write')
    .option('--model <run>', 'run directory of the tokenizer (default: the one recorded in the token file)')
    .option('--fps <n>', 'frame rate of the output (default: the source rate)', num('--fps', { min: 0, exclusiveMin: true, max: 1000 }))
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { output: string; model?: string; fps?: number; precision: E.Precision; json?: boolean }) => {
      const output = checkOutputFile(o.output, { option: '-o' });
      const tf = isCodedTokenFile(file) ? openCodedTokens(file) : await openTokenFile(file);
      const h = tf.header;
      const model = o.model ?? modelFor(h.kind, h.configHash, h.extra?.model as string | undefined);
      if (!model) throw new VtokError(`no --model given, and neither the model the token file records (${String(h.extra?.model ?? 'none')}) nor a shipped one is its ${h.kind} tokenizer with config ${h.configHash}`, file);
      const { tokenizer: tok } = loadTokenizer(model);
      setTokenizerPrecision(tok, o.precision);
      if (tok.kind !== h.kind || hashConfig(tok.config) !== h.configHash) {
        throw new VtokError(`tokens were made by a ${h.kind} tokenizer with config ${h.configHash}; ${model} is ${tok.kind} with config ${hashConfig(tok.config)}`, file);
      }
      const realFrames = Number(h.extra?.frames ?? Infinity);
      let written = 0;
      // Ctrl-C/SIGTERM: stop after the clip in progress; writeVideo then removes its partial file.
      const stop = watchInterrupts('stopping after this clip; no video will be written');
      async function* frames(): AsyncGenerator<Frame> {
        for await (const clip of tf.clips()) {
          if (await stop.poll()) throw new Interrupted(stop.signal!, `stopped after ${written} frames; ${o.output} was not written`);
          const video = decodeTokens(tok, { ids: clip.ids, n: 1, grid: clip.grid });
          for (const f of tensorToClips(video.data, video.shape)[0]) {
            if (written >= realFrames) return;
            written++;
            yield f;
          }
        }
      }
      const n = await writeVideo(output, frames(), { fps: o.fps ?? (h.source.fps || 8) }).finally(() => stop.dispose());
      console.log(o.json ? JSON.stringify({ output: o.output, frames: n }) : `${file} → ${n} frames → ${o.output}`);
    });
}
