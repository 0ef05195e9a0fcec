import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { inferenceWeights } from '../../src/nn/checkpoint.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { tempDir } from '../io/fixtures.js';

/**
 * The one loader of inference weights (tokenizers and the generator's LM): best checkpoint else latest, the EMA
 * weights where kept, and non-finite values refused naming the file they came from.
 */
const t = (...v: number[]) => E.concrete(Float32Array.from(v), [v.length], 'float32');

function run(weights: Record<string, number[]>, ema: Record<string, number[]> = {}): string {
  const dir = join(tempDir('infw'), 'run');
  saveCheckpoint(dir, {
    step: 1,
    weights: { model: new Map(Object.entries(weights).map(([k, v]) => [k, t(...v)])) },
    optimizers: { model: new Map(Object.entries(ema).map(([k, v]) => [`ema.${k}`, t(...v)])) },
    state: {},
  });
  return dir;
}

test('inferenceWeights: the EMA replaces the weights it covers; ema: false keeps the raw ones', () => {
  const dir = run({ a: [1, 2], b: [3] }, { a: [5, 6] });
  assert.deepEqual([...(inferenceWeights(dir).weights.get('a')!.data as Float32Array)], [5, 6]);
  assert.deepEqual([...(inferenceWeights(dir, { ema: false }).weights.get('a')!.data as Float32Array)], [1, 2]);
  assert.throws(() => inferenceWeights(join(tempDir('infw-none'), 'run')), /run: the run has no checkpoint yet/);
});

test('inferenceWeights refuses NaN and infinite values, naming the file, the first tensor and the next ones', () => {
  const raw = run({ a: [1, NaN], b: [Infinity], c: [1], d: [-Infinity], e: [NaN], f: [NaN] });
  const file = join(raw, 'checkpoints', 'step-0000001', 'model.safetensors');
  const message =
    `${file}: weight a holds NaN at index 1; so do b, d, ` +
    'e and 1 more (damaged weights, or a training run that diverged)';
  assert.throws(
    () => inferenceWeights(raw),
    (e: Error) => e.message === message,
  );
  // the EMA is what inference uses: a NaN there is named in its own file; raw NaN under a finite EMA is not used
  const ema = run({ a: [NaN], b: [1] }, { a: [1], b: [2, Infinity] });
  const emaFile = join(ema, 'checkpoints', 'step-0000001', 'optimizer.model.safetensors');
  assert.throws(
    () => inferenceWeights(ema),
    (e: Error) => e.message.startsWith(`${emaFile}: weight b holds Infinity at index 1 (`),
  );
  assert.doesNotThrow(() => inferenceWeights(run({ a: [NaN] }, { a: [1] })));
  assert.throws(
    () => inferenceWeights(run({ a: [NaN] }, { a: [1] }), { ema: false }),
    /\/model\.safetensors: weight a holds NaN/,
  );
});
