import { Option, type Command } from 'commander';
import { shippedModel } from '../../io/shipped.js';
import { tokenizerKind, tokenizerKinds, trainerOptions } from '../../tokenizers/registry.js';
import { runSummary, TrainingInterrupted, type LoopResult } from '../../train/loop.js';
import { trainLm, type TrainLmOptions } from '../../train/prefix-lm-run.js';
import { trainTokenizer, type TrainTokenizerOptions } from '../../train/tokenizer-run.js';
import { VtokError } from '../../util/errors.js';
import { int, intList, num } from '../../util/options.js';

/** Parsed options: those of both trainings, and the tokenizer kinds' own by key (src/tokenizers/kind.ts). */
type Opts = Omit<TrainTokenizerOptions, 'kind' | 'kindOptions'> &
  Omit<TrainLmOptions, 'shards'> & { shards?: string } & Record<string, unknown>;

/**
 * `vtok train <kind> --data moving-mnist|synthetic|<folder> --preset tiny|small|base --out <run dir>`.
 * Re-running the same command resumes from the run's latest checkpoint. Each tokenizer kind brings its own options
 * (src/tokenizers/<kind>/kind.ts); they are offered here and refused for the other kinds.
 */
export function registerTrain(program: Command): void {
  const trainable = tokenizerKinds().filter((k) => tokenizerKind(k).train);
  const kindOptions = trainerOptions();
  const shipped = shippedModel('gray video');
  const command = program
    .command('train')
    .description('train a tokenizer or the prefix LM (resumes when the run directory already has checkpoints)')
    .argument('<kind>', `${trainable.join(' | ')} (tokenizers) | lm (the prefix LM, from token shards)`)
    .requiredOption('--out <dir>', 'run directory (config, checkpoints, metrics, curves, samples)')
    .option(
      '--data <name|folder>',
      'moving-mnist, synthetic, or a folder of videos (class = subfolder)',
      'moving-mnist',
    )
    .option('--preset <name>', 'tiny | small | base (lm: tiny | small)', 'tiny')
    .option('--steps <n>', "training steps (default: the preset's)", int('--steps', { min: 1, max: 1e8 }))
    .option('--batch <n>', "batch size (default: the preset's)", int('--batch', { min: 1, max: 1024 }))
    .option(
      '--frames <n>',
      "frames of a training clip (default: the preset's; 1 trains a video tokenizer on images)",
      int('--frames', { min: 1, max: 4096 }),
    )
    .option(
      '--lr <x>',
      "peak learning rate (default: the preset's)",
      num('--lr', { min: 0, exclusiveMin: true, max: 1 }),
    );
  for (const { option, kinds } of kindOptions) {
    const o = new Option(option.flag, `${kinds.map((k) => k.title).join(', ')}: ${option.description}`);
    command.addOption(option.parse ? o.argParser(option.parse) : o);
  }
  command
    .option('--gan', 'add the 3D PatchGAN discriminator (hinge + LeCam)')
    .option('--perceptual <model.onnx>', 'add an LPIPS-style perceptual loss over this ONNX feature network (frozen)')
    .option(
      '--perceptual-weight <x>',
      'weight of the perceptual loss (default 0.1)',
      num('--perceptual-weight', { min: 0, max: 1000 }),
    )
    .option('--eval-every <n>', 'evaluate and write samples every n steps', int('--eval-every', { min: 1, max: 1e8 }))
    .option('--seed <n>', 'seed for initialisation and data', int('--seed', { min: 0, max: 2 ** 31 - 1 }), 0)
    .option('--shards <dir>', 'lm: token shards to train on (vtok tokenize)')
    .option('--val-shards <dir>', 'lm: token shards for the per-task validation NLL')
    .option(
      '--tokenizer <run>',
      `lm: the tokenizer the shards were made with (default: the shipped ${shipped.name})`,
      shipped.path,
    )
    .option(
      '--text-encoder <dir>',
      'lm: a frozen ONNX text encoder folder (text-encoder.json, model, tokenizer.json) instead of the built-in one',
    )
    .option(
      '--mixture <task=w,…>',
      'lm: task weights (default: t2v=0.4,t2i=0.1,uncond=0.1,fp=0.2,i2v=0.2 for captioned data)',
    )
    .option(
      '--image-steps <n>',
      'lm: image-first curriculum, t2i only for the first n steps',
      int('--image-steps', { min: 0, max: 1e8 }),
    )
    .option(
      '--image-batch <n>',
      'lm: rows of an image-phase batch (default: --batch times the latent frames of a clip)',
      int('--image-batch', { min: 1, max: 1e6 }),
    )
    .option(
      '--cond-dropout <p>',
      'lm: probability of dropping the text or the class label (for classifier-free guidance; default 0.1)',
      num('--cond-dropout', { min: 0, max: 1 }),
    )
    .option(
      '--fp-cond-frames <list>',
      'lm: latent frames a frame-prediction row conditions on, one drawn per row (default: 1 up to a second, ' +
        'leaving two to generate; e.g. 1,2,3)',
      intList('--fp-cond-frames', { min: 1, max: 1024 }),
    )
    .option('--quiet', 'no progress bar')
    .action(async (kind: string, o: Opts, cmd: Command) => {
      const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      const flag = (key: string) => cmd.options.find((x) => x.attributeName() === key)!.long;
      const lmOnly = [
        'shards',
        'valShards',
        'tokenizer',
        'mixture',
        'imageSteps',
        'imageBatch',
        'condDropout',
        'fpCondFrames',
        'textEncoder',
      ];
      // Stopped by a signal: the summary still goes out (saying where it stopped), then the CLI reports the stop.
      const run = (training: Promise<LoopResult>) =>
        training.then(
          (r) => summary(o.out, r, null),
          (e) => {
            if (e instanceof TrainingInterrupted) summary(o.out, e.result, e.signal);
            throw e;
          },
        );
      if (kind === 'lm') {
        const tokenizerOnly = [
          'data',
          'frames',
          ...kindOptions.map((x) => x.key),
          'gan',
          'perceptual',
          'perceptualWeight',
        ];
        for (const k of tokenizerOnly)
          if (given(k)) throw new VtokError(`${flag(k)} applies to tokenizer training, not lm`);
        if (!o.shards) throw new VtokError('train lm needs --shards <dir> (make them with vtok tokenize)');
        await run(trainLm({ ...o, shards: o.shards }));
        return;
      }
      for (const k of lmOnly) if (given(k)) throw new VtokError(`${flag(k)} applies to lm only, not ${kind}`);
      const own = Object.fromEntries(kindOptions.filter((x) => given(x.key)).map((x) => [x.key, o[x.key]]));
      await run(trainTokenizer({ ...o, kind, kindOptions: own }));
    });
}

/** The run's summary as one JSON line (src/train/loop.ts, runSummary). */
function summary(run: string, r: LoopResult, stopped: NodeJS.Signals | null): void {
  console.log(JSON.stringify(runSummary(run, r, stopped)));
}
