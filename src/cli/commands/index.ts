import type { Command } from 'commander';
import { registerCodec } from './codec.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerFrames } from './frames.js';
import { registerGenerate } from './generate.js';
import { registerImport } from './import.js';
import { registerInfo } from './info.js';
import { registerMetrics } from './metrics.js';
import { registerPack } from './pack.js';
import { registerParity } from './parity.js';
import { registerPrepare } from './prepare.js';
import { registerStudy } from './study.js';
import { registerTokenize } from './tokenize.js';
import { registerTrain } from './train.js';
import { registerWorker } from './worker.js';

/** Every CLI command, as a function that registers it on the program. Add new commands here. */
export const commands: ((program: Command) => void)[] = [
  registerDemo,
  registerTrain,
  registerCodec,
  registerEval,
  registerPack,
  registerImport,
  registerParity,
  registerInfo,
  registerFrames,
  registerMetrics,
  registerStudy,
  registerTokenize,
  registerWorker,
  registerGenerate,
  registerPrepare,
];
