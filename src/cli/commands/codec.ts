import { existsSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CodedTokenWriter, isCodedTokenFile, openCodedTokens } from '../../codec/container.js';
import * as E from '../../engine/index.js';
import { clipsToTensor, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, openTokenFile, TokenFileWriter } from '../../io/tokenfile.js';
import { probeVideo, readClip, readFrames, writeVideo } from '../../io/video.js';
import '../../tokenizers/kinds.js';
import { loadTokenizer } from '../../tokenizers/registry.js';
import { setTokenizerPrecision, type Tokenizer } from '../../tokenizers/tokenizer.js';
import { VtokError } from '../../util/errors.js';
import { progress } from '../../util/progress.js';
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

/** Frames of one clip → the tokenizer's input tensor (gray when it takes one channel). */
function toInput(tok: Tokenizer, frames: Frame[]): E.Tensor {
  const t = clipsToTensor([frames]);
  if ((tok.channels ?? 3) === 3) return E.concrete(t.data, t.shape, 'float32');
  const [n, , T, H, W] = t.shape;
  const plane = T * H * W, gray = new Float32Array(plane);
  for (let i = 0; i < plane; i++) gray[i] = (t.data[i] + t.data[plane + i] + t.data[2 * plane + i]) / 3;
  return E.concrete(gray, [n, 1, T, H, W], 'float32');
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
    const g = tok.grid(tok.clipFrames, 1024, 1024).shape;
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
export function parsePrecision(v: string): E.Precision {
  if (v !== 'fp32' && v !== 'int8') throw new VtokError(`--precision must be fp32 or int8, got ${JSON.stringify(v)}`);
  return v;
}

const PRECISION_HELP = 'inference precision: fp32, or int8 (quantized convolutions, calibrated on the first clip)';

export function registerCodec(program: Command): void {
  program
    .command('encode')
    .description('encode a video or image into a .vtok token file with a trained tokenizer')
    .argument('<input>', 'video or image file')
    .option('--model <run>', 'run directory of a trained tokenizer (default: the shipped natural-video model for colour input, the Moving MNIST one for gray)')
    .requiredOption('-o, --output <file>', 'token file to write: .vtok (ids bit-packed) or .vtkc (ids entropy coded)')
    .option('--size <px>', 'resize the short side and center-crop to this square size (default: the training size)')
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, o: { model?: string; output: string; size?: string; precision: E.Precision; json?: boolean }) => {
      const info = await probeVideo(input);
      const model = o.model ?? ((await isGray(input)) ? SHIPPED_MODEL : SHIPPED_NATURAL_MODEL);
      const { tokenizer: tok } = loadTokenizer(model);
      setTokenizerPrecision(tok, o.precision);
      const size = Number(o.size ?? runSize(model) ?? Math.min(info.width, info.height));
      const stride = spatialStride(tok);
      if (!Number.isInteger(size) || size <= 0 || size % stride !== 0) {
        const lo = Math.max(stride, Math.floor(size / stride) * stride);
        throw new VtokError(`frame size ${o.size ?? size} is not a multiple of the tokenizer's spatial stride ${stride} (try --size ${lo} or ${lo + stride})`, input);
      }
      const clipLen = tok.clipFrames;
      const total = info.isImage ? 1 : info.frames;
      const grid = tok.grid(clipLen, size, size).shape;
      const header = {
        kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid, fps: info.fps, sourceSize: [info.height, info.width] as [number, number],
        extra: { model: resolve(model), size, clipFrames: clipLen, frames: total },
      };
      // .vtkc: the ids entropy coded (src/codec); anything else: the bit-packed .vtok token file.
      const writer = extname(o.output).toLowerCase() === '.vtkc' ? new CodedTokenWriter(o.output, header) : new TokenFileWriter(o.output, header);
      const bar = progress('encode', Math.max(1, Math.ceil(total / clipLen)), { quiet: o.json });
      let buf: Frame[] = [], clips = 0, frames = 0;
      const flush = () => {
        // a short last clip is padded with its last frame; extra.frames says how many are real
        while (buf.length < clipLen) buf.push(buf[buf.length - 1]);
        const ids = tok.encode(toInput(tok, buf));
        writer.writeClip(E.toArray(ids), grid);
        bar.update(++clips);
        buf = [];
      };
      try {
        for await (const f of readFrames(input, { size, crop: size })) {
          buf.push(f);
          frames++;
          if (buf.length === clipLen) flush();
        }
        if (buf.length) flush();
        if (frames === 0) throw new VtokError('no frames decoded', input);
        writer.close();
      } catch (e) {
        writer.abort();
        throw e;
      } finally {
        bar.stop();
      }
      const summary = { output: o.output, kind: tok.kind, precision: o.precision, clips, frames, tokensPerClip: grid.reduce((a, b) => a * b, 1), vocabSize: tok.vocabSize };
      console.log(o.json ? JSON.stringify(summary) : `${input}: ${frames} frames → ${clips} clips × ${summary.tokensPerClip} tokens (vocabulary ${tok.vocabSize}) → ${o.output}`);
    });

  program
    .command('decode')
    .description('decode a .vtok token file back to video (mp4, gif, webm, …) or an image')
    .argument('<tokens>', 'token file (.vtok or .vtkc)')
    .requiredOption('-o, --output <file>', 'video or image to write')
    .option('--model <run>', 'run directory of the tokenizer (default: the one recorded in the token file)')
    .option('--fps <n>', 'frame rate of the output (default: the source rate)')
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { output: string; model?: string; fps?: string; precision: E.Precision; json?: boolean }) => {
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
      async function* frames(): AsyncGenerator<Frame> {
        for await (const clip of tf.clips()) {
          const ids = E.tensor(clip.ids, [1, ...clip.grid], 'int64');
          const video = tok.decode(ids);
          for (const f of tensorToClips(video.data as Float32Array, video.shape)[0]) {
            if (written >= realFrames) return;
            written++;
            yield f;
          }
        }
      }
      const n = await writeVideo(o.output, frames(), { fps: Number(o.fps ?? (h.fps || 8)) });
      console.log(o.json ? JSON.stringify({ output: o.output, frames: n }) : `${file} → ${n} frames → ${o.output}`);
    });
}
