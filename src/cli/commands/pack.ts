import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { saveTensors } from '../../nn/weights-file.js';
import { LM_KIND, packGenerator } from '../../generation/model-dir.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { checkOutputDir } from '../../util/output-path.js';
import { int, oneOf } from '../../util/options.js';

/**
 * `vtok pack <run> --out <dir>`: a trained run's inference weights (best or latest checkpoint, EMA) as a minimal run
 * directory — config and one weights file, no optimizer state — small enough to ship or share. A prefix-LM run
 * packs into a self-contained generator directory (the LM, its text encoder and a copy of its tokenizer).
 */
function isGeneratorDir(run: string): boolean {
  try {
    return JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'))?.model?.kind === LM_KIND;
  } catch {
    return false;
  }
}

export function registerPack(program: Command): void {
  program
    .command('pack')
    .description("pack a run's best (EMA) weights into a minimal run directory for inference")
    .argument('<run>', 'run directory')
    .requiredOption('--out <dir>', 'directory to write')
    .option('--half', 'store weights as float16 (half the size)')
    .option(
      '--checkpoint <which>',
      'best (by held-out PSNR) or latest',
      oneOf('--checkpoint', 'best', 'latest'),
      'best',
    )
    .option(
      '--size <px>',
      'frame size encode/eval/demo use by default (default: the training size; ' +
        'a fully convolutional model trained on crops is meant for larger frames)',
      int('--size', { min: 1 }),
    )
    .action((run: string, o: { out: string; half?: boolean; size?: number; checkpoint: 'best' | 'latest' }) => {
      checkOutputDir(o.out, { option: '--out', inputs: [run] });
      if (isGeneratorDir(run)) {
        const r = packGenerator(run, o.out, { half: o.half });
        console.log(
          `${run} → ${o.out} (prefix LM, ${r.parameters.toLocaleString()} parameters${o.half ? ', float16' : ''}; ` +
            `tokenizer copied to ${join(o.out, 'tokenizer')}${r.tokenizerHalf ? ', float16' : ''})`,
        );
        return;
      }
      const { module, tokenizer } = loadTokenizer(run, { which: o.checkpoint });
      const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
      if (o.size !== undefined)
        config.data = { ...config.data, trainSize: config.data?.size, size: o.size, frames: tokenizer.clipFrames };
      const step = 0;
      const dir = join(o.out, 'checkpoints', 'step-0000000');
      mkdirSync(dir, { recursive: true });
      saveTensors(join(dir, 'model.safetensors'), module.stateDict(), { packedFrom: run }, o.half ? 'F16' : undefined);
      writeFileAtomic(join(dir, 'state.json'), JSON.stringify({ step, packedFrom: run }));
      writeFileAtomic(
        join(o.out, 'config.json'),
        JSON.stringify({ ...config, packed: { from: run, half: !!o.half } }, null, 2),
      );
      for (const p of ['latest', 'best'])
        writeFileAtomic(join(o.out, 'checkpoints', `${p}.json`), JSON.stringify({ dir: 'step-0000000', step }));
      console.log(
        `${run} → ${o.out} (${module.parameterCount().toLocaleString()} parameters${o.half ? ', float16' : ''})`,
      );
    });
}
