import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import * as E from '../../engine/index.js';
import { type ClipTensor, clipsToTensor, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, openTokenFile, TokenFileWriter } from '../../io/tokenfile.js';
import { probeVideo, readFrames, writeVideo } from '../../io/video.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { loadTokenizer } from '../../tokenizers/registry.js';
import { setTokenizerPrecision, type Tokenizer } from '../../tokenizers/tokenizer.js';
import { VtokError } from '../../util/errors.js';
import { progress } from '../../util/progress.js';

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
function toInput(tok: Tokenizer, frames: Frame[]): ClipTensor {
  const t = clipsToTensor([frames]);
  if ((tok.channels ?? 3) === 3) return t;
  const [n, , T, H, W] = t.shape;
  const plane = T * H * W, gray = new Float32Array(plane);
  for (let i = 0; i < plane; i++) gray[i] = (t.data[i] + t.data[plane + i] + t.data[2 * plane + i]) / 3;
  return { data: gray, shape: [n, 1, T, H, W] };
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
    .requiredOption('--model <run>', 'run directory of a trained tokenizer (vtok train …)')
    .requiredOption('-o, --output <file>', 'token file to write (.vtok)')
    .option('--size <px>', 'resize the short side and center-crop to this square size (default: the training size)')
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, o: { model: string; output: string; size?: string; precision: E.Precision; json?: boolean }) => {
      const { tokenizer: tok } = loadTokenizer(o.model);
      setTokenizerPrecision(tok, o.precision);
      const info = await probeVideo(input);
      const size = Number(o.size ?? runSize(o.model) ?? Math.min(info.width, info.height));
      const clipLen = tok.clipFrames;
      const total = info.isImage ? 1 : info.frames;
      const grid = tok.grid([tok.channels ?? 3, clipLen, size, size]).shape;
      const writer = new TokenFileWriter(o.output, {
        modality: tok.modality, kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid, source: { fps: info.fps, frameSize: [info.height, info.width] },
        extra: { model: resolve(o.model), size, clipFrames: clipLen, frames: total },
      });
      const bar = progress('encode', Math.max(1, Math.ceil(total / clipLen)), { quiet: o.json });
      let buf: Frame[] = [], clips = 0, frames = 0;
      const flush = () => {
        // a short last clip is padded with its last frame; extra.frames says how many are real
        while (buf.length < clipLen) buf.push(buf[buf.length - 1]);
        writer.writeClip(encodeClips(tok, toInput(tok, buf)).ids, grid);
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
    .argument('<tokens>', 'token file (.vtok)')
    .requiredOption('-o, --output <file>', 'video or image to write')
    .option('--model <run>', 'run directory of the tokenizer (default: the one recorded in the token file)')
    .option('--fps <n>', 'frame rate of the output (default: the source rate)')
    .option('--precision <p>', PRECISION_HELP, parsePrecision, 'fp32')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o: { output: string; model?: string; fps?: string; precision: E.Precision; json?: boolean }) => {
      const tf = await openTokenFile(file);
      const h = tf.header;
      const model = o.model ?? (h.extra?.model as string | undefined);
      if (!model) throw new VtokError('no --model given and the token file does not record one', file);
      const { tokenizer: tok } = loadTokenizer(model);
      setTokenizerPrecision(tok, o.precision);
      if (tok.kind !== h.kind || hashConfig(tok.config) !== h.configHash) {
        throw new VtokError(`tokens were made by a ${h.kind} tokenizer with config ${h.configHash}; ${model} is ${tok.kind} with config ${hashConfig(tok.config)}`, file);
      }
      const realFrames = Number(h.extra?.frames ?? Infinity);
      let written = 0;
      async function* frames(): AsyncGenerator<Frame> {
        for await (const clip of tf.clips()) {
          const video = decodeTokens(tok, { ids: clip.ids, n: 1, grid: clip.grid });
          for (const f of tensorToClips(video.data, video.shape)[0]) {
            if (written >= realFrames) return;
            written++;
            yield f;
          }
        }
      }
      const n = await writeVideo(o.output, frames(), { fps: Number(o.fps ?? (h.source.fps || 8)) });
      console.log(o.json ? JSON.stringify({ output: o.output, frames: n }) : `${file} → ${n} frames → ${o.output}`);
    });
}
