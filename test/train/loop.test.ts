import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Linear, Module } from '../../src/nn/index.js';
import { AdamW, TrainStep, warmupCosine } from '../../src/nn/train.js';
import { checkpointDir } from '../../src/nn/checkpoint.js';
import { trainLoop, type TrainTask } from '../../src/train/loop.js';
import { Rng } from '../../src/util/rng.js';

class Net extends Module {
  fc1 = new Linear(4, 16);
  fc2 = new Linear(16, 1);
  forward(x: Tensor): Tensor {
    // dropout draws noise from the engine RNG every step: resume must restore that stream too
    return this.fc2.forward(E.dropout(E.tanh(this.fc1.forward(x)), 0.2, this.training));
  }
}

/** Batch t is a pure function of t. */
async function* batches(start: number): AsyncIterable<{ x: Tensor; y: Tensor }> {
  for (let t = start; ; t++) {
    const r = new Rng(1000 + t);
    const x = r.normal(32 * 4);
    const y = new Float32Array(32).map((_, i) => Math.sin(x[4 * i]!) + x[4 * i + 1]! * x[4 * i + 2]!);
    yield { x: E.concrete(x, [32, 4], 'float32'), y: E.concrete(y, [32, 1], 'float32') };
  }
}

function makeTask(): {
  task: TrainTask<{ x: Tensor; y: Tensor }>;
  net: Net;
  step: TrainStep<{ x: Tensor; y: Tensor }>;
} {
  E.seed(42);
  const net = new Net();
  const step = new TrainStep(net, (b: { x: Tensor; y: Tensor }) => E.mseLoss(net.forward(b.x), b.y), {
    optimizer: new AdamW(),
    schedule: warmupCosine(1e-2, 5, 40),
    emaDecay: 0.9,
  });
  return {
    net,
    step,
    task: {
      modules: { model: net },
      steps: { model: step },
      iterate: (b) => ({ loss: step.run(b).loss }),
      evaluate: () => ({ score: E.item(net.fc2.bias!.value) }),
    },
  };
}

describe('training loop', () => {
  it('resumes exactly: 15 steps + resume to 40 equals 40 straight', async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'vtok-run-'));
    const a = makeTask();
    const ra = await trainLoop(a.task, {
      runDir: dirA,
      totalSteps: 40,
      batches,
      config: { model: { kind: 'net' } },
      quiet: true,
      logEvery: 5,
      evalEvery: 10,
      best: { metric: 'score', mode: 'max' },
    });
    assert.equal(ra.step, 40);

    const dirB = mkdtempSync(join(tmpdir(), 'vtok-run-'));
    const b1 = makeTask();
    const r1 = await trainLoop(b1.task, {
      runDir: dirB,
      totalSteps: 40,
      batches,
      config: { model: { kind: 'net' } },
      quiet: true,
      logEvery: 5,
      stopAfter: 15,
    });
    assert.equal(r1.step, 15);
    E.seed(999); // a fresh process would start from another RNG state: the checkpoint must restore it
    const b2 = makeTask();
    const r2 = await trainLoop(b2.task, {
      runDir: dirB,
      totalSteps: 40,
      batches,
      config: { model: { kind: 'net' } },
      quiet: true,
      logEvery: 5,
    });
    assert.equal(r2.resumedFrom, 15);
    assert.equal(r2.step, 40);
    for (const [name, p] of a.net.namedParams()) {
      assert.deepEqual(E.toArray(b2.net.stateDict().get(name)!), E.toArray(p.value), `${name} differs after resume`);
    }
    assert.deepEqual(E.toArray(b2.step.emaState().get('fc1.weight')!), E.toArray(a.step.emaState().get('fc1.weight')!));
    // files a person or a later command looks at
    assert.ok(existsSync(join(dirA, 'curves.png')));
    assert.ok(readFileSync(join(dirA, 'curves.png')).subarray(1, 4).toString() === 'PNG');
    const lines = readFileSync(join(dirB, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.filter((l) => l.loss !== undefined).map((l) => l.step),
      [5, 10, 15, 20, 25, 30, 35, 40],
    );
    assert.ok(checkpointDir(dirA, 'best'));
    assert.ok(JSON.parse(readFileSync(join(dirA, 'config.json'), 'utf8')).model.kind === 'net');
  });

  it('refuses a run directory that holds another model, and a broken checkpoint pointer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtok-run-'));
    const a = makeTask();
    await trainLoop(a.task, { runDir: dir, totalSteps: 3, batches, config: { model: { kind: 'net' } }, quiet: true });
    await assert.rejects(
      trainLoop(makeTask().task, {
        runDir: dir,
        totalSteps: 3,
        batches,
        config: { model: { kind: 'other' } },
        quiet: true,
      }),
      /different model config/,
    );
    writeFileSync(join(dir, 'checkpoints', 'latest.json'), '{"dir": "step-0000999"}');
    await assert.rejects(
      trainLoop(makeTask().task, {
        runDir: dir,
        totalSteps: 5,
        batches,
        config: { model: { kind: 'net' } },
        quiet: true,
      }),
      /missing or incomplete/,
    );
  });
});
