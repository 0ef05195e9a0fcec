import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { discriminatorLoss, generatorLoss, lecam, LecamEma } from '../../src/losses/gan.js';
import { AdamW, constantLr, PatchDiscriminator3D, TrainStep } from '../../src/nn/train.js';
import { Rng } from '../../src/util/rng.js';

describe('GAN pieces', () => {
  it('hinge, non-saturating and LeCam losses have their textbook values', () => {
    const real = E.tensor([2, 0.5, -1], [3]),
      fake = E.tensor([-2, 0, 1], [3]);
    // hinge D: 0.5·(mean relu(1−r) + mean relu(1+f)) = 0.5·((0 + 0.5 + 2)/3 + (0 + 1 + 2)/3)
    assert.ok(Math.abs(E.item(discriminatorLoss(real, fake, 'hinge')) - 0.5 * (2.5 / 3 + 3 / 3)) < 1e-6);
    assert.ok(Math.abs(E.item(generatorLoss(fake, 'hinge')) - 1 / 3) < 1e-6);
    const sp = (x: number) => Math.log1p(Math.exp(x));
    assert.ok(Math.abs(E.item(generatorLoss(fake, 'non-saturating')) - (sp(2) + sp(0) + sp(-1)) / 3) < 1e-6);
    // LeCam with ema_real 0.2, ema_fake −0.1: mean relu(r + 0.1)² + mean relu(0.2 − f)²
    const lc = E.item(lecam(real, fake, E.scalar(0.2), E.scalar(-0.1)));
    const want = (2.1 ** 2 + 0.6 ** 2 + 0) / 3 + (2.2 ** 2 + 0.2 ** 2 + 0) / 3;
    assert.ok(Math.abs(lc - want) < 1e-5, `${lc} vs ${want}`);
    const ema = new LecamEma(0.5);
    ema.update(1, -1);
    assert.deepEqual([ema.real, ema.fake], [0.5, -0.5]);
  });

  it('the 3D PatchGAN learns to tell smooth clips from noise (its own compiled step)', () => {
    E.seed(5);
    const rng = new Rng(6);
    const d = new PatchDiscriminator3D({ channels: 3, ndf: 8, layers: 2 });
    const out = d.forward(E.zeros([1, 3, 4, 16, 16]));
    assert.deepEqual([...out.shape], [1, 1, 1, 4, 4]);
    const step = new TrainStep(
      d,
      (b: { real: Tensor; fake: Tensor }) => discriminatorLoss(d.forward(b.real), d.forward(b.fake), 'hinge'),
      {
        optimizer: new AdamW({ betas: [0.5, 0.9], weightDecay: 0 }),
        schedule: constantLr(2e-3),
      },
    );
    const smooth = () => {
      const v = new Float32Array(2 * 3 * 4 * 16 * 16);
      const ph = rng.uniform(2);
      for (let i = 0; i < v.length; i++) v[i] = Math.sin((i % 16) / 3 + ph[0]! * 6) * 0.5;
      return E.concrete(v, [2, 3, 4, 16, 16], 'float32');
    };
    const noise = () =>
      E.concrete(
        rng.uniform(2 * 3 * 4 * 256).map((u) => 2 * u - 1),
        [2, 3, 4, 16, 16],
        'float32',
      );
    const first = step.run({ real: smooth(), fake: noise() }).loss;
    let last = first;
    for (let i = 0; i < 40; i++) last = step.run({ real: smooth(), fake: noise() }).loss;
    assert.ok(first > 0.5 && last < 0.2 * first, `D loss ${first} → ${last}`);
  });
});
