#!/usr/bin/env node
// An entry point installs the engine's Node backend (onnxruntime-node); library code imports the backend-free core.
import '../engine/index.js';
import { Command } from 'commander';
import { tokenizerKind, tokenizerKinds } from '../tokenizers/registry.js';
import { VtokError } from '../util/errors.js';
import { exitCodeFor, Interrupted } from '../util/interrupt.js';
import { commands } from './commands/index.js';

/**
 * The vtok CLI: a thin layer over the library. Each command lives in its own file under commands/ and registers
 * itself on the program. A failing command prints one message naming the file and the problem (the stack only
 * with --debug) and exits non-zero. Long commands stop cleanly on Ctrl-C/SIGTERM (src/util/interrupt.ts).
 */
const program = new Command();
program
  .name('vtok')
  .description(
    `Video tokenizers (${tokenizerKinds()
      .map((k) => tokenizerKind(k).title)
      .join(', ')}) and video generation, traced from TypeScript to ONNX`,
  )
  .option('--debug', 'print stack traces on errors')
  // commander's own errors (unknown option, missing argument) as one line like every other error, with a pointer
  // to the help rather than the whole help text
  .configureOutput({
    outputError: (str, write) => write(`vtok: ${str.trim().replace(/^error: /, '')} (see --help)\n`),
  });
for (const register of commands) register(program);

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as Error;
  if (debug) console.error(err.stack ?? err);
  else console.error(`vtok: ${err instanceof VtokError ? err.message : `${err.name}: ${err.message}`}`);
  // A command stopped by Ctrl-C/SIGTERM after saving its work exits as the signal would (130/143).
  process.exitCode = err instanceof Interrupted ? exitCodeFor(err.signal) : 1;
}
