import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { generateAsync, type GenerateResult } from '../../generation/generate.js';
import { loadGenerator, type Generator } from '../../generation/model-dir.js';
import { gridFrame, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, writeTokenFile } from '../../io/tokenfile.js';
import { readAllFrames, writeGrid, writeVideo } from '../../io/video.js';
import { VtokError } from '../../util/errors.js';
import { Interrupted, watchInterrupts } from '../../util/interrupt.js';
import { checkOutputFile } from '../../util/output-path.js';
import { progress } from '../../util/progress.js';
import { GRAY_HELP, int, num, oneOf } from '../options.js';

/** The shipped text-to-video model: the LM trained on captioned Moving MNIST with the shipped tokenizer. */
export const SHIPPED_GENERATOR = fileURLToPath(new URL('../../../../models/t2v-mnist', import.meta.url));

const TASKS = ['t2v', 't2i', 'i2v', 'continue', 'fp', 'uncond', 'class'] as const;

interface Opts { task: string; prompt?: string; image?: string; video?: string; label?: number; condFrames: number; seconds?: number; cfg: number; temperature: number; topK?: number; topP?: number; samples: number; seed: number; precision: 'fp32' | 'int8'; gray?: boolean; model: string; output: string; quiet?: boolean; json?: boolean }

/** Where the token file goes: beside the output, with the extension .vtok. */
export const tokenPathFor = (out: string): string => `${out.slice(0, out.length - extname(out).length)}.vtok`;

/** Writes the decoded samples: side by side per frame (mp4/gif/…), or all frames as one grid image (png). */
export async function writeSamples(path: string, r: GenerateResult, fps: number): Promise<void> {
  const clips = tensorToClips(r.frames.data, r.frames.shape);
  if (extname(path).toLowerCase() === '.png') {
    writeGrid(path, clips.flat(), { columns: clips[0]!.length, gap: 2 });
    return;
  }
  const frames: Frame[] = clips[0]!.map((_, t) => (clips.length === 1 ? clips[0]![t]! : gridFrame(clips.map((c) => c[t]!), { columns: clips.length, gap: 2 })));
  await writeVideo(path, frames, { fps });
}

/** The token file: every sample's token clips (first clip, then each extension's), readable by `vtok decode`. */
export function writeGeneratedTokens(path: string, gen: Generator, r: GenerateResult, extra: Record<string, unknown>): void {
  const tok = gen.tokenizer, s = gen.layout.outputs[0]!;
  const clips = r.tokens.flat();
  writeTokenFile(path, {
    modality: 'video', kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid: clips[0]!.grid,
    source: { fps: gen.fps, frameSize: [s.height, s.width] },
    // `model` is the tokenizer, so that `vtok decode` finds it; `generator` the LM that made the tokens
    extra: { ...extra, model: resolve(gen.tokenizerDir), generator: resolve(gen.dir), samples: r.tokens.length, clipsPerSample: r.tokens[0]!.length, overlapFrames: r.overlapFrames, sequences: r.sequences.map((q) => Array.from(q)) },
  }, clips.map((c) => ({ grid: c.grid, ids: c.ids })));
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate video (or an image) with a prefix LM: text, image or video in, video out; tokens kept as .vtok')
    .option('--task <task>', 't2v | t2i | i2v | continue | uncond | class', oneOf('--task', ...TASKS), 't2v')
    .option('--prompt <text>', 'text prompt (t2v, t2i; optional for i2v)')
    .option('--image <file>', 'i2v: the first frame (an image or the first frame of a video)')
    .option('--video <file>', 'continue: the video whose last frame(s) the output continues')
    .option('--label <k>', 'class: the class label', int('--label', { min: 0, max: 1e6 }))
    .option('--cond-frames <k>', 'continue and extensions: latent frames that condition each clip (1 or 2)', int('--cond-frames', { min: 1, max: 2 }), 1)
    .option('--seconds <s>', 'length; beyond one clip the video is extended (default: one clip)', num('--seconds', { min: 0, exclusiveMin: true, max: 3600 }))
    .option('--cfg <s>', 'classifier-free guidance scale (1 = none)', num('--cfg', { min: 0, max: 100 }), 1)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', num('--temperature', { min: 0, max: 10 }), 1)
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k', { min: 1, max: 1 << 20 }))
    .option('--top-p <p>', 'nucleus sampling', num('--top-p', { min: 0, exclusiveMin: true, max: 1 }))
    .option('--samples <n>', 'samples (side by side in the output)', int('--samples', { min: 1, max: 64 }), 1)
    .option('--seed <n>', 'sampling seed', int('--seed', { min: 0, max: 2 ** 31 - 1 }), 0)
    .option('--precision <p>', 'fp32 | int8: decode with int8 weights (faster on big models; small ones gain little)', oneOf('--precision', 'fp32', 'int8'), 'fp32')
    .option('--gray', GRAY_HELP)
    .option('--model <dir>', 'model directory or `vtok train lm` run (default: the shipped t2v-mnist)', SHIPPED_GENERATOR)
    .requiredOption('-o, --output <file>', 'output video (.mp4, .gif, …) or image grid (.png); the tokens go beside it as .vtok')
    .option('--quiet', 'no progress bar')
    .option('--json', 'print a JSON summary')
    .action(async (o: Opts) => {
      const out = checkOutputFile(o.output, { option: '-o' });
      const tokenPath = checkOutputFile(tokenPathFor(out), { option: '-o' });
      if (extname(out) === '.vtok') throw new VtokError('-o names the decoded output (.mp4, .gif, .png); the token file is written beside it', out);
      for (const [flag, f] of [['--image', o.image], ['--video', o.video]] as const) if (f !== undefined && !existsSync(f)) throw new VtokError(`no such file (${flag})`, f);
      const gen = loadGenerator(o.model);
      const s = gen.layout.outputs[0]!;
      const image = o.image ? (await readAllFrames(o.image, { maxFrames: 1 }))[0] : undefined;
      if (o.image && !image) throw new VtokError('no frame could be read', o.image);
      const video = o.video ? await readAllFrames(o.video) : undefined;
      let bar: ReturnType<typeof progress> | undefined;
      let rate = 0;
      const t0 = performance.now();
      const stop = watchInterrupts('stopping; nothing will be written');
      const outcome = await generateAsync(gen, {
        task: o.task, prompt: o.prompt, image, video, label: o.label, condFrames: o.condFrames, seconds: o.seconds, cfg: o.cfg, temperature: o.temperature, topK: o.topK, topP: o.topP, samples: o.samples, seed: o.seed, precision: o.precision, gray: o.gray,
        onProgress: (p) => {
          bar ??= progress('generate', p.total * p.segments, { quiet: o.quiet || o.json });
          rate = p.tokensPerSecond;
          bar.update(p.segment * p.total + p.done, { 'tokens/s': Math.round(p.tokensPerSecond) });
        },
      }, () => stop.poll()).finally(() => {
        bar?.stop();
        stop.dispose();
      });
      if (!outcome.done) throw new Interrupted(stop.signal!, `stopped while sampling; ${out} was not written`);
      const r = outcome.value;
      await writeSamples(out, r, gen.fps);
      writeGeneratedTokens(tokenPath, gen, r, { task: o.task, prompt: o.prompt ?? null, seed: o.seed, cfg: o.cfg });
      const summary = { output: out, tokens: tokenPath, task: o.task, samples: o.samples, frames: r.frames.shape[2], size: `${s.width}x${s.height}`, tokensPerSecond: rate, seconds: (performance.now() - t0) / 1000 };
      if (o.json) console.log(JSON.stringify(summary));
      else console.log(`${o.samples} sample(s), ${summary.frames} frame(s) of ${summary.size} → ${out} (tokens: ${tokenPath}; ${rate.toFixed(0)} tokens/s)`);
    });
}
