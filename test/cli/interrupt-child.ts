/**
 * A child process for the interrupt tests: the shared training loop over a small MLP, with options to make each
 * step block the event loop for a while (as onnxruntime's run does) and to make checkpoints big. Prints "step N"
 * when step N is under way (before its blocking part) and exits as the CLI does.
 *
 * Two holds let a test land a signal at an exact point however loaded the machine is (the child cannot run ahead
 * of the test): step `holdStep` blocks after printing "step N" until the file `<runDir>.go-step` exists, and a
 * checkpoint save of step ≥ `holdSave` blocks, its weights written and its optimizer file just opened (empty),
 * after printing "save N held", until `<runDir>.go-save` exists. Both block the thread, as a step or a save does.
 *
 * node interrupt-child.js <runDir> <totalSteps> <stepMs> <hidden> <checkpointEvery> [holdStep] [holdSave]
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Linear, Module } from '../../src/nn/index.js';
import { AdamW, TrainStep, warmupCosine } from '../../src/nn/train.js';
import { trainLoop } from '../../src/train/loop.js';
import { exitCodeFor, Interrupted } from '../../src/util/interrupt.js';
import { Rng } from '../../src/util/rng.js';

const [runDir, total, stepMs, hidden, ckptEvery, holdStep = '0', holdSave = '0'] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];

/** Blocks the thread (no event loop turns, as in a step) until `file` exists. */
const holdUntil = (file: string) => {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!fs.existsSync(file)) Atomics.wait(cell, 0, 0, 5);
};

if (Number(holdSave) > 0) {
  // checkpoint-write.ts writes optimizer.<name>.safetensors (through writeFileAtomic's openSync) after the weights
  const openSync = fs.openSync;
  fs.openSync = ((path: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode) => {
    const fd = openSync(path, flags, mode);
    const m = /step-(\d+)\.tmp-\d+\/optimizer\./.exec(String(path));
    if (m && Number(m[1]) >= Number(holdSave)) {
      process.stdout.write(`save ${Number(m[1])} held\n`);
      holdUntil(`${runDir}.go-save`);
    }
    return fd;
  }) as typeof fs.openSync;
  syncBuiltinESMExports();
}

class Net extends Module {
  fc1 = new Linear(64, Number(hidden));
  fc2 = new Linear(Number(hidden), 1);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(E.tanh(this.fc1.forward(x)));
  }
}

async function* batches(start: number): AsyncIterable<{ x: Tensor; y: Tensor }> {
  for (let t = start; ; t++) {
    const x = new Rng(1000 + t).normal(8 * 64);
    yield { x: E.concrete(x, [8, 64], 'float32'), y: E.concrete(x.slice(0, 8), [8, 1], 'float32') };
  }
}

E.seed(1);
const net = new Net();
const step = new TrainStep(net, (b: { x: Tensor; y: Tensor }) => E.mseLoss(net.forward(b.x), b.y), {
  optimizer: new AdamW(),
  schedule: warmupCosine(1e-3, 1, 1000),
});
const block = (ms: number) => {
  const t = Date.now();
  while (Date.now() - t < ms);
};
try {
  await trainLoop(
    {
      modules: { model: net },
      steps: { model: step },
      iterate: (b, i) => {
        const loss = step.run(b).loss;
        process.stdout.write(`step ${i + 1}\n`);
        if (i + 1 === Number(holdStep)) holdUntil(`${runDir}.go-step`);
        else block(Number(stepMs));
        return { loss };
      },
      evaluate: (i) => ({ score: i }),
    },
    {
      runDir,
      totalSteps: Number(total),
      batches,
      config: { model: { kind: 'mlp', hidden } },
      quiet: true,
      logEvery: 1,
      evalEvery: 1000,
      checkpointEvery: Number(ckptEvery),
    },
  );
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exitCode = e instanceof Interrupted ? exitCodeFor(e.signal) : 1;
}
