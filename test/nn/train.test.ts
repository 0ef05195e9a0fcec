import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Conv2d, GroupNorm, Linear, Module } from '../../src/nn/index.js';
import { AdamW, constantLr, flatOf, packChunks, viewsOf, SGD, TrainStep, warmupCosine } from '../../src/nn/train.js';
import { Rng } from '../../src/util/rng.js';

/** Training learns: small models fit synthetic tasks in seconds, with one compiled step per iteration. */

class MLP extends Module {
  fc1 = new Linear(2, 32);
  fc2 = new Linear(32, 32);
  fc3 = new Linear(32, 1);
  forward(x: Tensor): Tensor {
    return this.fc3.forward(E.tanh(this.fc2.forward(E.tanh(this.fc1.forward(x)))));
  }
}

class ConvNet extends Module {
  conv1 = new Conv2d(1, 8, 3, { padding: 1 });
  norm = new GroupNorm(4, 8);
  conv2 = new Conv2d(8, 1, 3, { padding: 1 });
  forward(x: Tensor): Tensor {
    return this.conv2.forward(E.silu(this.norm.forward(this.conv1.forward(x))));
  }
}

describe('training', () => {
  it('an MLP fits a smooth 2-D function (AdamW, warmup + cosine, clipping, EMA)', () => {
    E.seed(1);
    const rng = new Rng(2);
    const n = 256;
    const x = rng.uniform(2 * n).map((v) => 2 * v - 1);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = Math.sin(3 * x[2 * i]!) * Math.cos(2 * x[2 * i + 1]!);
    const batch = { x: E.concrete(x, [n, 2], 'float32'), y: E.concrete(y, [n, 1], 'float32') };
    const model = new MLP();
    const step = new TrainStep(model, (b: typeof batch) => E.mseLoss(model.forward(b.x), b.y), {
      optimizer: new AdamW({ weightDecay: 0 }),
      schedule: warmupCosine(1e-2, 20, 600, 1e-3),
      clipNorm: 1,
      emaDecay: 0.9,
    });
    const first = step.run(batch).loss;
    let last = first;
    for (let i = 0; i < 600; i++) last = step.run(batch).loss;
    assert.ok(last < first / 10, `loss ${first} → ${last}`);
    assert.equal(step.t, 601);
    // the whole step compiled once
    const ema = step.emaState();
    assert.deepEqual([...ema.get('fc1.weight')!.shape], [32, 2]);
  });

  it('a chunked step (gradients, then the update in parameter chunks) matches the fused step', () => {
    const rng = new Rng(7);
    const n = 64;
    const x = rng.uniform(2 * n).map((v) => 2 * v - 1);
    const y = rng.normal(n, 0, 1);
    const batch = { x: E.concrete(x, [n, 2], 'float32'), y: E.concrete(y, [n, 1], 'float32') };
    const run = (update: 'fused' | 'chunked') => {
      E.seed(5);
      const model = new MLP();
      const step = new TrainStep(model, (b: typeof batch) => E.mseLoss(model.forward(b.x), b.y), {
        optimizer: new AdamW({ weightDecay: 0.01 }),
        schedule: constantLr(1e-2),
        clipNorm: 0.5,
        emaDecay: 0.9,
        update,
        chunkBytes: 600, // fc2.weight (4 KB) alone; the small tensors grouped
      });
      const losses = [0, 1, 2, 3].map(() => step.run(batch));
      return { step, model, losses };
    };
    const fused = run('fused');
    const chunked = run('chunked');
    assert.equal(fused.step.mode, 'fused');
    assert.equal(chunked.step.mode, 'chunked');
    fused.losses.forEach((r, i) => {
      assert.ok(
        Math.abs(r.loss - chunked.losses[i]!.loss) <= 1e-6 * Math.abs(r.loss),
        `step ${i} loss ${r.loss} vs ${chunked.losses[i]!.loss}`,
      );
      assert.ok(Math.abs(r.gradNorm! - chunked.losses[i]!.gradNorm!) <= 1e-5 * r.gradNorm!, `step ${i} grad norm`);
    });
    const close = (a: Map<string, Tensor>, b: Map<string, Tensor>, what: string) => {
      assert.deepEqual([...a.keys()], [...b.keys()]);
      for (const [k, t] of a) {
        const u = b.get(k)!.data as Float32Array;
        (t.data as Float32Array).forEach((v, i) => {
          assert.ok(Math.abs(v - u[i]!) <= 1e-6 + 1e-5 * Math.abs(v), `${what} ${k}[${i}]: ${v} vs ${u[i]}`);
        });
      }
    };
    close(
      new Map(fused.model.trainableParams().map(([k, p]) => [k, p.value])),
      new Map(chunked.model.trainableParams().map(([k, p]) => [k, p.value])),
      'param',
    );
    close(fused.step.optimizerState(), chunked.step.optimizerState(), 'state');
    // after an update, parameters are views into their chunk's flat buffer: fc1.weight and fc1.bias share one
    const [w1, b1] = chunked.model.trainableParams().map(([, p]) => p.value.data as Float32Array);
    assert.equal(w1!.buffer, b1!.buffer);
  });

  it(
    'packChunks packs first-fit decreasing, pads all but ' + 'the least filled chunk, and puts oversized tensors alone',
    () => {
      assert.deepEqual(packChunks([10, 20, 30, 100, 5, 5], 40), [
        { idx: [3], len: 100 },
        { idx: [2, 0], len: 40 },
        { idx: [1, 4, 5], len: 30 },
      ]);
      assert.deepEqual(packChunks([], 40), []);
    },
  );

  it('flatOf reuses the buffer its views share, and copies anything else', () => {
    const flat = E.concrete(Float32Array.from([1, 2, 3, 4, 5, 0]), [6], 'float32');
    const [a, b] = viewsOf(flat, [[2, 1], [3]]);
    assert.deepEqual([...b!.data], [3, 4, 5]);
    assert.equal(flatOf([a!, b!], 6).data.buffer, flat.data.buffer);
    const swapped = flatOf([b!, a!], 6);
    assert.notEqual(swapped.data.buffer, flat.data.buffer);
    assert.deepEqual([...swapped.data], [3, 4, 5, 1, 2, 0]);
  });

  it('a conv net learns a fixed 3×3 filter (SGD with momentum)', () => {
    E.seed(3);
    const rng = new Rng(4);
    const target = E.concrete(rng.normal(9, 0, 0.5), [1, 1, 3, 3], 'float32');
    const model = new ConvNet();
    const step = new TrainStep(model, (b: { x: Tensor; y: Tensor }) => E.mseLoss(model.forward(b.x), b.y), {
      optimizer: new SGD({ momentum: 0.9 }),
      schedule: constantLr(0.05),
    });
    const makeBatch = () => {
      const x = E.concrete(rng.normal(8 * 64), [8, 1, 8, 8], 'float32');
      return { x, y: E.conv(x, target, null, { padding: 1 }) };
    };
    const first = step.run(makeBatch()).loss;
    let last = first;
    for (let i = 0; i < 300; i++) last = step.run(makeBatch()).loss;
    assert.ok(last < first / 10, `loss ${first} → ${last}`);
  });

  it('AdamW matches the reference update rule on one step', () => {
    class P extends Module {
      w = new Linear(1, 1, { bias: false });
    }
    const m = new P();
    m.w.weight.value = E.tensor([2], [1, 1]);
    const opt = new AdamW({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
    const step = new TrainStep(m, (x: Tensor) => E.sum(E.mul(m.w.forward(x), 3)), {
      optimizer: opt,
      schedule: constantLr(0.5),
    });
    step.run(E.tensor([1], [1, 1]));
    // g = 3; m = 0.3, v = 0.009; m̂ = 3, v̂ = 9; p = 2·(1 − 0.5·0.1) − 0.5·3/(3 + 1e-8)
    const expected = 2 * (1 - 0.05) - 0.5 * (3 / (3 + 1e-8));
    assert.ok(Math.abs(E.item(m.w.weight.value) - expected) < 1e-6, `${E.item(m.w.weight.value)} vs ${expected}`);
  });
});
