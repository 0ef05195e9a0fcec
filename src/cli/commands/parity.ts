import type { Command } from 'commander';
import type { ParityReport } from '../../parity/index.js';
import { parityModel } from '../../generation/kinds.js';
import { runParity } from '../../parity/golden.js';
import { num } from '../../util/options.js';

/**
 * `vtok parity <golden.safetensors>`: reproduce a reference implementation's outputs from its weights. Prints one
 * line per output and a PASS/FAIL line (exit 1 on FAIL), or the whole report as JSON with --json.
 */
export function registerParity(program: Command): void {
  program
    .command('parity')
    .description('load a golden reference file, run vtok on its inputs, and compare with the reference outputs')
    .argument('<golden>', 'golden .safetensors file (test/fixtures/golden/*.safetensors)')
    .option(
      '--tolerance <rel>',
      "max error relative to the reference tensor's largest magnitude",
      num('--tolerance', { min: 0, exclusiveMin: true, max: 1 }),
      1e-4,
    )
    .option(
      '--model <dir>',
      "run the case's inputs through this model directory's weights (e.g. an import) instead of the file's",
    )
    .option('--json', 'print the report as JSON')
    .action((file: string, opts: { tolerance: number; model?: string; json?: boolean }) => {
      const model = opts.model;
      const report = runParity(file, opts.tolerance, model ? (c) => parityModel(model, c) : undefined);
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(`${formatParity(report)}\n`);
      if (!report.pass) process.exitCode = 1;
    });
}

/** The human report: one line per output (ok/FAIL, shape, error) and a final PASS/FAIL line. */
export function formatParity(report: ParityReport): string {
  const within = (o: ParityReport['outputs'][number]) =>
    o.exact !== undefined ? o.exact : o.maxRelError <= report.tolerance;
  const lines = report.outputs.map((o) => {
    const status =
      o.exact !== undefined
        ? o.exact
          ? 'exact'
          : `${o.mismatches} mismatches`
        : `abs ${o.maxAbsError.toExponential(2)} rel ${o.maxRelError.toExponential(2)}`;
    return `${within(o) ? 'ok  ' : 'FAIL'} ${o.name.padEnd(32)} [${o.shape.join(',')}] ${status}`;
  });
  const good = report.outputs.filter(within).length;
  if (report.model) lines.push(`(weights and config of ${report.model})`);
  lines.push(
    `${report.pass ? 'PASS' : 'FAIL'}: ${report.case}, ${good} of ${report.outputs.length} outputs ` +
      `match (relative error ≤ ${report.tolerance.toExponential(1)}, indices exact)`,
  );
  return lines.join('\n');
}
