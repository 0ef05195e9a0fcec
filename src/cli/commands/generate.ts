import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { GenerateProgress } from '../../generation/generate.js';
import {
  checkGenerateInputs,
  generateAnyAsync,
  generatorKindOf,
  loadAnyGenerator,
  readConditioningVideo,
} from '../../generation/kinds.js';
import { checkSamplesPath, writeGeneratedTokens, writeSamples } from '../../generation/output.js';
import { SAMPLING_INPUTS } from '../../generation/tasks.js';
import { shippedModel } from '../../io/shipped.js';
import { readAllFrames } from '../../io/video.js';
import { removeOwnTemps } from '../../util/atomic.js';
import { VtokError } from '../../util/errors.js';
import { Interrupted, watchInterrupts } from '../../util/interrupt.js';
import { checkOutputFile } from '../../util/output-path.js';
import { progress } from '../../util/progress.js';
import { GRAY_HELP, int, num, oneOf } from '../../util/options.js';

const TASKS = ['t2v', 't2i', 'i2v', 'continue', 'fp', 'uncond', 'class'] as const;

interface Opts {
  task: string;
  prompt?: string;
  image?: string;
  video?: string;
  label?: string;
  condFrames?: number;
  seconds?: number;
  cfg?: number;
  cfgInterval?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  samples: number;
  seed: number;
  precision: 'fp32' | 'int8';
  gray?: boolean;
  model: string;
  output: string;
  quiet?: boolean;
  json?: boolean;
}

/** Where the token file goes: beside the output, with the extension .vtok. */
export const tokenPathFor = (out: string): string => `${out.slice(0, out.length - extname(out).length)}.vtok`;

/**
 * Says once how long a long request will take (over a minute): from the rate of its first seconds of sampling
 * (the first step, which compiles the model, left out), extensions included, on stderr.
 */
function durationNote(samples: number): (p: GenerateProgress) => void {
  let t1: number | undefined,
    done1 = 0,
    said = false;
  return (p) => {
    if (said) return;
    const done = p.segment * p.total + p.done,
      now = performance.now();
    if (t1 === undefined) {
      t1 = now;
      done1 = done;
      return;
    }
    if (now - t1 < 3000) return;
    said = true;
    const seconds = ((p.segments * p.total - done) * (now - t1)) / (1000 * (done - done1));
    if (seconds < 60) return;
    const clips = p.segments * samples;
    const time = seconds < 5400 ? `${Math.round(seconds / 60)} minutes` : `${(seconds / 3600).toFixed(1)} hours`;
    const nl = process.stderr.isTTY ? '\n' : '';
    const what = `${clips} clip${clips === 1 ? '' : 's'}`;
    process.stderr.write(`${nl}vtok: about ${time} for ${what}; Ctrl-C stops, writing nothing\n`);
  };
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description(
      'generate video (or an image) with a prefix LM or LARP AR model: text, image, video or a class in, video ' +
        'out; tokens kept as .vtok',
    )
    .option('--task <task>', 't2v | t2i | i2v | continue | uncond | class', oneOf('--task', ...TASKS), 't2v')
    .option('--prompt <text>', 'text prompt (t2v, t2i; optional for i2v)')
    .option('--image <file>', 'i2v: the first frame (an image or the first frame of a video)')
    .option('--video <file>', 'continue: the video whose last frame(s) the output continues')
    .option('--label <k>', "class: the class, by number or by the model's name for it (LARP AR: e.g. PlayingGuitar)")
    .option(
      '--cond-frames <k>',
      'continue and extensions: prefix LM: latent frames that condition each clip (default: the last second, as far ' +
        'as the model was trained to condition on); LARP AR-FP: video frames (default 5)',
      int('--cond-frames', { min: 1, max: 1024 }),
    )
    .option(
      '--seconds <s>',
      'length; beyond one clip the video is extended (default: one clip)',
      num('--seconds', { min: 0, exclusiveMin: true, max: 3600 }),
    )
    .option(
      '--cfg <s>',
      "classifier-free guidance scale (1 = none; default 1, or a LARP AR model's own, 1.25 for UCF-101)",
      num('--cfg', { min: 0, max: 100 }),
    )
    .option(
      '--cfg-interval <k>',
      "LARP AR: guide the first k + 2 tokens only (the reference's cfg_interval; default -1: every token)",
      int('--cfg-interval', { min: -1, max: 1 << 20 }),
    )
    .option(
      '--temperature <t>',
      'sampling temperature (0 = greedy; default 1)',
      num('--temperature', { min: 0, max: 10 }),
    )
    .option('--top-k <k>', 'sample among the k most likely tokens', int('--top-k', { min: 1, max: 1 << 20 }))
    .option('--top-p <p>', 'nucleus sampling', num('--top-p', { min: 0, exclusiveMin: true, max: 1 }))
    .option('--samples <n>', 'samples (side by side in the output)', int('--samples', { min: 1, max: 64 }), 1)
    .option('--seed <n>', 'sampling seed', int('--seed', { min: 0, max: 2 ** 31 - 1 }), 0)
    .option(
      '--precision <p>',
      'fp32 | int8: decode with int8 weights (faster on big models; small ones gain little)',
      oneOf('--precision', 'fp32', 'int8'),
      'fp32',
    )
    .option('--gray', GRAY_HELP)
    .option(
      '--model <dir>',
      'model directory or `vtok train lm` run (default: the shipped t2v-mnist)',
      shippedModel('generator').path,
    )
    .requiredOption(
      '-o, --output <file>',
      'output video (.mp4, .gif, …) or image grid (.png); the tokens go beside it as .vtok',
    )
    .option('--quiet', 'no progress bar')
    .option('--json', 'print a JSON summary')
    .action(async (o: Opts, cmd: Command) => {
      // inputs the task would ignore are refused by their option names (the task registry says what each takes)
      const optionName = (k: string) => cmd.options.find((x) => x.attributeName() === k)!.long!;
      const given = Object.fromEntries([...SAMPLING_INPUTS, 'cfgInterval' as const].map((k) => [k, o[k]]));
      checkGenerateInputs(generatorKindOf(o.model), o.task, given, optionName);
      const out = checkOutputFile(o.output, { option: '-o', inputs: [o.image, o.video] });
      const tokenPath = checkOutputFile(tokenPathFor(out), { option: '-o', inputs: [o.image, o.video] });
      if (extname(out) === '.vtok')
        throw new VtokError('-o names the decoded output (.mp4, .gif, .png); the token file is written beside it', out);
      checkSamplesPath(out);
      for (const [flag, f] of [
        ['--image', o.image],
        ['--video', o.video],
      ] as const)
        if (f !== undefined && !existsSync(f)) throw new VtokError(`no such file (${flag})`, f);
      const loaded = loadAnyGenerator(o.model),
        gen = loaded.gen;
      const image = o.image ? (await readAllFrames(o.image, { maxFrames: 1 }))[0] : undefined;
      if (o.image && !image) throw new VtokError('no frame could be read', o.image);
      const video = o.video ? await readConditioningVideo(loaded, o.video, o.condFrames) : undefined;
      let bar: ReturnType<typeof progress> | undefined;
      let rate = 0;
      const t0 = performance.now();
      const note = durationNote(o.samples);
      // held until both files are written: a second Ctrl-C while writing removes this process's temporary files
      const stop = watchInterrupts('stopping; nothing will be written', () => {
        removeOwnTemps(out);
        removeOwnTemps(tokenPath);
      });
      let outcome: Awaited<ReturnType<typeof generateAnyAsync>>;
      try {
        outcome = await generateAnyAsync(
          loaded,
          {
            task: o.task,
            prompt: o.prompt,
            image,
            video,
            label: o.label,
            condFrames: o.condFrames,
            seconds: o.seconds,
            cfg: o.cfg,
            cfgInterval: o.cfgInterval,
            temperature: o.temperature,
            topK: o.topK,
            topP: o.topP,
            samples: o.samples,
            seed: o.seed,
            precision: o.precision,
            gray: o.gray,
            onProgress: (p) => {
              note(p);
              bar ??= progress('generate', p.total * p.segments, { quiet: o.quiet || o.json });
              rate = p.tokensPerSecond;
              bar.update(p.segment * p.total + p.done, { 'tokens/s': Math.round(p.tokensPerSecond) });
            },
          },
          () => stop.poll(),
        ).finally(() => bar?.stop());
        if (!outcome.done) throw new Interrupted(stop.signal!, `stopped while sampling; ${out} was not written`);
        await writeSamples(out, outcome.value, gen.fps);
        writeGeneratedTokens(tokenPath, gen, outcome.value, {
          task: o.task,
          prompt: o.prompt ?? null,
          seed: o.seed,
          cfg: o.cfg ?? null,
          ...outcome.value.settings,
        });
      } finally {
        stop.dispose();
      }
      const r = outcome.value;
      const s = { height: r.frames.shape[3]!, width: r.frames.shape[4]! };
      const summary = {
        output: out,
        tokens: tokenPath,
        task: o.task,
        samples: o.samples,
        frames: r.frames.shape[2],
        size: `${s.width}x${s.height}`,
        tokensPerSecond: rate,
        seconds: (performance.now() - t0) / 1000,
      };
      if (o.json) console.log(JSON.stringify(summary));
      else
        console.log(
          `${o.samples} sample(s), ${summary.frames} frame(s) of ${summary.size} → ` +
            `${out} (tokens: ${tokenPath}; ${rate.toFixed(0)} tokens/s)`,
        );
    });
}
