import type { Command } from 'commander';
import { runParity } from '../../parity/index.js';
import '../../tokenizers/registry.js';

/** `vtok parity <golden.safetensors>`: reproduce a reference implementation's outputs from its weights. */
export function registerParity(program: Command): void {
  program
    .command('parity')
    .description('load a golden reference file, run vtok on its inputs, and compare with the reference outputs')
    .argument('<golden>', 'golden .safetensors file (test/fixtures/golden/*.safetensors)')
    .option('--tolerance <rel>', 'max error relative to the reference tensor\'s largest magnitude', '1e-4')
    .action((file: string, opts: { tolerance: string }) => {
      const report = runParity(file, Number(opts.tolerance));
      for (const o of report.outputs) {
        const status = o.exact !== undefined ? (o.exact ? 'exact' : `${o.mismatches} mismatches`) : `abs ${o.maxAbsError.toExponential(2)} rel ${o.maxRelError.toExponential(2)}`;
        process.stderr.write(`${o.name.padEnd(32)} [${o.shape.join(',')}] ${status}\n`);
      }
      process.stdout.write(`${JSON.stringify(report)}\n`);
      if (!report.pass) process.exitCode = 1;
    });
}
