import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Batch } from '../../data/dataset.js';
import { createLoader } from '../../data/loader.js';
import { namedDataset } from '../../data/named.js';
import * as E from '../../engine/core.js';
import { evaluateReconstruction } from '../../tokenizers/reconstruction.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import { setTokenizerPrecision } from '../../tokenizers/tokenizer.js';
import { VtokError } from '../../util/errors.js';
import { progress } from '../../util/progress.js';
import { GRAY_HELP, int } from '../../util/options.js';
import { fitChannels } from '../../io/clip.js';
import { parsePrecision } from './codec.js';

/**
 * `vtok eval --model <run> --data …`: reconstruction PSNR, SSIM, bits per pixel and codebook usage on held-out clips.
 */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained tokenizer on held-out clips (PSNR, SSIM, bits per pixel, codebook usage)')
    .requiredOption('--model <run>', 'run directory of a trained tokenizer')
    .option('--data <name|folder>', 'moving-mnist, synthetic or a folder of videos (default: the training data)')
    .option('--clips <n>', 'held-out clips to evaluate', int('--clips', { min: 1, max: 100000 }), 64)
    .option('--batch <n>', 'clips per batch', int('--batch', { min: 1, max: 1024 }), 8)
    .option(
      '--precision <p>',
      'inference precision: fp32, or int8 (quantized, calibrated on one batch of training-split clips)',
      parsePrecision,
      'fp32',
    )
    .option('--gray', GRAY_HELP)
    .option('--json', 'print JSON')
    .action(
      async (o: {
        model: string;
        data?: string;
        clips: number;
        batch: number;
        precision: E.Precision;
        gray?: boolean;
        json?: boolean;
      }) => {
        const { tokenizer } = loadTokenizer(o.model);
        const cfg = JSON.parse(readFileSync(join(o.model, 'config.json'), 'utf8'));
        if (o.precision !== 'fp32') {
          // Calibrated on clips of the training split, never on the held-out clips it is scored on.
          const calib = await createLoader(
            namedDataset(
              o.data ?? cfg.data.name,
              'train',
              cfg.data.size,
              cfg.data.frames,
              cfg.train?.seed ?? 0,
              cfg.data.channels,
            ),
            { batchSize: o.batch, shuffle: false, worker: false },
          );
          let first: Batch | undefined;
          for await (const b of calib) {
            first = b;
            break;
          }
          await calib.close();
          if (!first) throw new VtokError(`no training-split clips to calibrate ${o.precision} on`);
          const fit = fitChannels(first.data, first.shape, tokenizer.channels ?? 3, o.gray, o.data ?? cfg.data.name);
          setTokenizerPrecision(tokenizer, o.precision, { calibration: E.concrete(fit.data, fit.shape, 'float32') });
        }
        const spec = namedDataset(
          o.data ?? cfg.data.name,
          'test',
          cfg.data.size,
          cfg.data.frames,
          cfg.train?.seed ?? 0,
          cfg.data.channels,
        );
        const loader = await createLoader(spec, { batchSize: o.batch, shuffle: false, worker: false });
        const batches: Batch[] = [];
        const bar = progress('eval', Math.ceil(o.clips / o.batch), { quiet: o.json });
        let clips = 0;
        let converted = false;
        for await (const b of loader) {
          const fit = fitChannels(b.data, b.shape, tokenizer.channels ?? 3, o.gray, o.data ?? cfg.data.name);
          converted ||= fit.converted;
          batches.push({ ...b, data: fit.data, shape: fit.shape as Batch['shape'] });
          clips += b.shape[0];
          bar.update(batches.length);
          if (clips >= o.clips) break;
        }
        await loader.close();
        bar.stop();
        if (converted && !o.json) process.stderr.write('vtok: note: colour converted to gray (--gray)\n');
        const report = {
          model: o.model,
          kind: tokenizer.kind,
          precision: o.precision,
          vocabSize: tokenizer.vocabSize,
          ...evaluateReconstruction(tokenizer, batches),
        };
        if (o.json) console.log(JSON.stringify(report));
        else
          console.log(
            `${o.model} (${tokenizer.kind}, ${o.precision}, vocabulary ${tokenizer.vocabSize}) ` +
              `on ${report.clips} clips: PSNR ${report.psnr.toFixed(2)} dB, SSIM ${report.ssim.toFixed(4)}, ` +
              `${report.bpp.toFixed(4)} bits/pixel, codebook usage ` +
              `${(100 * report.codebook_usage).toFixed(1)}% (perplexity ${report.perplexity.toFixed(1)})`,
          );
      },
    );
}
