import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { compileInference } from '../../src/nn/compiled.js';
import { Linear } from '../../src/nn/index.js';

/** y = x·Wᵀ + b of a 2→1 Linear with given weights; `traces` counts how often the function was traced. */
function setup(weights: 'fed' | 'baked', extra: { inferenceState?: () => () => void } = {}) {
  const lin = new Linear(2, 1);
  lin.weight.value = E.concrete(Float32Array.from([1, 2]), [1, 2], 'float32');
  lin.bias!.value = E.concrete(Float32Array.from([0.5]), [1], 'float32');
  const seen = { traces: 0, training: [] as boolean[] };
  const f = compileInference(
    lin,
    (x: Tensor) => {
      seen.traces++;
      seen.training.push(lin.training);
      return lin.forward(x);
    },
    { name: `lin_${weights}`, weights, ...extra },
  );
  return { lin, f, seen };
}

const x = E.concrete(Float32Array.from([3, 4]), [1, 2], 'float32');
const value = (t: Tensor) => (t.data as Float32Array)[0];

describe('compiled inference', () => {
  for (const weights of ['fed', 'baked'] as const) {
    it(`${weights}: traced in eval mode, the module's mode restored, current weights used`, () => {
      const { lin, f, seen } = setup(weights);
      lin.train();
      assert.equal(value(f(x)), 3 + 8 + 0.5);
      assert.deepEqual(seen.training, [false]);
      assert.equal(lin.training, true);
      lin.weight.value = E.concrete(Float32Array.from([-1, 1]), [1, 2], 'float32');
      assert.equal(value(f(x)), -3 + 4 + 0.5);
      // fed: the same program sees the new weights; baked: replaced weights compile a new one
      assert.equal(seen.traces, weights === 'fed' ? 1 : 2);
      f(x);
      assert.equal(seen.traces, weights === 'fed' ? 1 : 2, 'unchanged weights reuse the program');
      f.dispose();
      f(x);
      assert.equal(seen.traces, weights === 'fed' ? 2 : 3, 'disposed programs compile again');
    });
  }

  it('inference state is set while tracing and undone after', () => {
    let state = 'train';
    const seen: string[] = [];
    const { f } = setup('baked', {
      inferenceState: () => {
        state = 'infer';
        seen.push(state);
        return () => {
          state = 'train';
        };
      },
    });
    f(x);
    assert.deepEqual(seen, ['infer']);
    assert.equal(state, 'train');
  });

  it('int8 needs baked weights', () => {
    const lin = new Linear(2, 1);
    assert.throws(
      () => compileInference(lin, (t: Tensor) => lin.forward(t), { name: 'q', precision: 'int8' }),
      /q: int8 quantizes constant weights; compile with weights: 'baked'/,
    );
  });
});
