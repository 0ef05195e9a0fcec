import type { Command } from 'commander';
import { loadGenerator } from '../../generation/model-dir.js';
import { shippedModel } from '../../io/shipped.js';
import { markdownTable, runLarpPriorStudy, STUDY_BUDGETS } from '../../studies/larp-prior/index.js';
import { rdMarkdown, runCodecRdStudy } from '../../studies/codec-rd/index.js';
import { runT2vStudy, studyGenerator, T2V_BUDGETS, t2vMarkdown } from '../../studies/t2v/index.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir } from '../../util/output-path.js';

function seedOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
    throw new VtokError(`--seed must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * `vtok study larp-prior [--out DIR] [--budget tiny|micro] [--seed N]`;
 * `vtok study t2v --model DIR [--out DIR] [--budget small|micro] [--seed N]`.
 */
export function registerStudy(program: Command): void {
  program
    .command('study')
    .description(
      'run a study end to end, resumably (larp-prior: LARP with vs without its prior, ' +
        'judged by a GPT on its tokens; t2v: a text-to-video model judged on held-out captions, ' +
        'frame prediction and long videos; codec-rd: vtok tokens vs H.264/H.265, rate-distortion)',
    )
    .argument('<name>', 'larp-prior | t2v | codec-rd')
    .option('--model <dir>', 't2v: the model directory to study')
    .option('--out <dir>', 'study directory (re-running resumes; default runs/study-NAME)')
    .option(
      '--budget <name>',
      `larp-prior: ${Object.keys(STUDY_BUDGETS).join(' | ')} (default tiny); ` +
        `t2v: ${Object.keys(T2V_BUDGETS).join(' | ')} (default small)`,
    )
    .option('--seed <n>', 'seed for data, initialisation and sampling', seedOption, 0)
    .option('--quiet', 'no progress output')
    .option('--json', 'print results.json')
    .action(
      async (
        name: string,
        o: { model?: string; out?: string; budget?: string; seed: number; quiet?: boolean; json?: boolean },
      ) => {
        if (name !== 'larp-prior' && name !== 't2v' && name !== 'codec-rd')
          throw new VtokError(`unknown study "${name}" (known: larp-prior, t2v, codec-rd)`);
        const out = o.out ?? `runs/study-${name}`;
        const quiet = o.quiet || o.json;
        if (name === 'codec-rd') {
          if (o.model !== undefined || o.budget !== undefined)
            throw new VtokError(
              'codec-rd takes neither --model nor --budget (it measures the shipped natural-video model)',
            );
          checkOutputDir(out, { option: '--out' });
          const r = await runCodecRdStudy({
            out,
            model: shippedModel('colour video').path,
            log: quiet ? undefined : (l) => process.stderr.write(`${l}\n`),
          });
          console.log(o.json ? JSON.stringify(r) : rdMarkdown(r));
          return;
        }
        if (name === 'larp-prior') {
          if (o.model !== undefined)
            throw new VtokError('--model is for the t2v study (larp-prior trains its own models)');
          checkOutputDir(out, { option: '--out' });
          const r = await runLarpPriorStudy({ out, budget: o.budget ?? 'tiny', seed: o.seed, quiet });
          console.log(o.json ? JSON.stringify(r) : markdownTable(r));
          return;
        }
        if (o.model === undefined)
          throw new VtokError(
            'the t2v study needs --model DIR (a text-to-video model directory, e.g. from vtok train lm)',
          );
        const budget = o.budget ?? 'small';
        if (!(budget in T2V_BUDGETS))
          throw new VtokError(`unknown t2v study budget "${budget}" (known: ${Object.keys(T2V_BUDGETS).join(', ')})`);
        checkOutputDir(out, { option: '--out' });
        const gen = loadGenerator(o.model);
        const r = await runT2vStudy({
          generator: studyGenerator(gen, T2V_BUDGETS[budget]!.sampling),
          model: o.model,
          out,
          budget,
          seed: o.seed,
          quiet,
        });
        console.log(o.json ? JSON.stringify(r) : t2vMarkdown(r));
      },
    );
}
