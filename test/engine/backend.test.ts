import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { asyncOnly } from './async-backend.js';

/** The backend interface: an asynchronous backend (as onnxruntime-web is) stands in for the Node one. */
describe('engine backends', () => {
  after(() => E.installBackend(E.nodeBackend));

  it('an asynchronous backend runs sessions through runAsync, and a synchronous call says so', async () => {
    E.installBackend(asyncOnly(E.nodeBackend));
    assert.equal(E.backend().name, 'async test backend');
    const { graph } = E.trace((x) => E.mul(x as Tensor, 2), [E.zeros([3])]);
    const s = new E.Session(E.lowerToOnnx(graph), ['in0'], ['out0']);
    const [y] = await s.runAsync([{ dtype: 'float32', shape: [3], data: Float32Array.of(1, 2, 3) }]);
    assert.deepEqual([...(y!.data as Float32Array)], [2, 4, 6]);
    assert.throws(
      () => s.run([{ dtype: 'float32', shape: [3], data: Float32Array.of(1, 2, 3) }]),
      /async test backend backend runs asynchronously: use runAsync/,
    );
    s.dispose();
    // what the backend lacks is named, not assumed
    assert.throws(() => E.exportOnnx((x) => x, [E.zeros([1])], 'never-written.onnx'), /cannot write files/);
    assert.throws(() => E.optimizedOpCounts(E.lowerToOnnx(graph)), /cannot show its optimised model/);
    E.installBackend(E.nodeBackend);
    assert.deepEqual(E.toArray(E.mul(E.concrete(Float32Array.of(1, 2), [2], 'float32'), 3)), [3, 6]);
  });
});
