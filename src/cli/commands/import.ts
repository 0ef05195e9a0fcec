import type { Command } from 'commander';
import { importAny } from '../../generation/import.js';
import { oneOf } from '../../util/options.js';

/**
 * `vtok import <file|folder> --out <dir>`: the authors' released weights (an Open-MAGVIT2 Lightning checkpoint, a
 * LARP Hugging Face folder) as a model directory every command takes as `--model`, with where they came from and
 * their licence recorded in its config.json.
 */
export function registerImport(program: Command): void {
  program
    .command('import')
    .description(
      'import a released model (Open-MAGVIT2 .ckpt, LARP tokenizer or AR Hugging Face folder) as a model directory',
    )
    .argument('<source>', 'checkpoint file, folder (a Hugging Face snapshot), or hf:owner/name[@revision]')
    .requiredOption('--out <dir>', 'model directory to write (absent or empty)')
    .option('--config <file>', "the release's config, YAML or JSON (Open-MAGVIT2: the repository's configs/*.yaml)")
    .option('--file <name>', 'hf: the checkpoint to take from a repository that holds several')
    .option('--tokenizer <dir>', 'LARP AR: the imported LARP tokenizer its tokens decode with (copied in)')
    .option('--half', 'store weights as float16 (half the size)')
    .option('--weights <which>', 'Open-MAGVIT2: ema or raw weights', oneOf('--weights', 'ema', 'raw'), 'ema')
    .option(
      '--lfq-order <order>',
      'Open-MAGVIT2: the LFQ bit order the checkpoint was trained with (lsb: current code; msb: June-2024 code)',
      oneOf('--lfq-order', 'lsb', 'msb'),
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (
        source: string,
        o: {
          out: string;
          config?: string;
          half?: boolean;
          weights: 'ema' | 'raw';
          lfqOrder?: 'lsb' | 'msb';
          file?: string;
          tokenizer?: string;
          json?: boolean;
        },
      ) => {
        const r = await importAny(source, {
          tokenizer: o.tokenizer,
          file: o.file,
          out: o.out,
          config: o.config,
          half: o.half,
          weights: o.weights,
          lfqOrder: o.lfqOrder,
          quiet: o.json,
        });
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        if (r.hub?.unreachable)
          process.stderr.write(`vtok: note: the hub was not reached (${r.hub.unreachable}): used the cached copy\n`);
        for (const n of r.notes) process.stderr.write(`vtok: note: ${n}\n`);
        console.log(
          `${source} → ${o.out}: ${r.release} (${r.kind}, ${r.parameters.toLocaleString()} parameters` +
            `${o.half ? ', float16' : ''}; licence ${r.licence})`,
        );
      },
    );
}
