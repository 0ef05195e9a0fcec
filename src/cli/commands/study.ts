import type { Command } from 'commander';
import { markdownTable, runLarpPriorStudy, STUDY_BUDGETS } from '../../studies/larp-prior/index.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir } from '../../util/output-path.js';

function seedOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new VtokError(`--seed must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** `vtok study larp-prior [--out DIR] [--budget tiny|micro] [--seed N]`. */
export function registerStudy(program: Command): void {
  program
    .command('study')
    .description('run a study end to end, resumably (larp-prior: LARP with vs without its prior, judged by a GPT on its tokens)')
    .argument('<name>', 'larp-prior')
    .option('--out <dir>', 'study directory (re-running resumes)', 'runs/study-larp-prior')
    .option('--budget <name>', `${Object.keys(STUDY_BUDGETS).join(' | ')}`, 'tiny')
    .option('--seed <n>', 'seed for data, initialisation and sampling', seedOption, 0)
    .option('--quiet', 'no progress output')
    .option('--json', 'print results.json')
    .action(async (name: string, o: { out: string; budget: string; seed: number; quiet?: boolean; json?: boolean }) => {
      if (name !== 'larp-prior') throw new VtokError(`unknown study "${name}" (known: larp-prior)`);
      checkOutputDir(o.out, { option: '--out' });
      const r = await runLarpPriorStudy({ out: o.out, budget: o.budget, seed: o.seed, quiet: o.quiet || o.json });
      console.log(o.json ? JSON.stringify(r) : markdownTable(r));
    });
}
