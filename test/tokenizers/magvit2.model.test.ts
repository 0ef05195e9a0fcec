import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { bindParams } from '../../src/nn/index.js';
import { lfqLoss } from '../../src/quantizers/lfq.js';
import {
  depthToSpaceBlocks,
  forwardTrain,
  Magvit2Model,
  Magvit2Tokenizer,
  parseMagvit2Config,
} from '../../src/tokenizers/magvit2/index.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The MAGVIT-v2 model: shapes through the causal stack, the image variant, the Tokenizer face, and training gradients.
 */

// ch_mult [2, 2, 1]: two (2,2,2) downsamplings, so 4× in time (1 + 4k → 1 + k) and 4× in space; tiny widths.
const videoConfig = {
  ddconfig: {
    double_z: false,
    z_channels: 6,
    resolution: 8,
    in_channels: 3,
    out_ch: 3,
    ch: 32,
    ch_mult: [2, 2, 1],
    num_res_blocks: 1,
  },
  n_embed: 64,
  embed_dim: 6,
  encoder_class: 'src/Open_MAGVIT2/modules/diffusionmodules/improved_video_model.py::Encoder',
};
const imageConfig = {
  ...videoConfig,
  ddconfig: { ...videoConfig.ddconfig, ch_mult: [1, 1] },
  encoder_class: 'src/Open_MAGVIT2/modules/diffusionmodules/improved_model.py::Encoder',
};

const video = (shape: number[], seed: number) =>
  E.tensor(
    new Rng(seed).uniform(shape.reduce((a, b) => a * b, 1)).map((v) => 2 * v - 1),
    shape,
  );

describe('MAGVIT-v2 tokenizer', () => {
  const tok = new Magvit2Tokenizer(videoConfig);

  it('parses the reference config and derives the video/image kind from the encoder class', () => {
    assert.equal(tok.cfg.kind, 'video');
    assert.equal(parseMagvit2Config(imageConfig).kind, 'image');
    assert.equal(tok.vocabBits, 6);
    assert.equal(tok.vocabSize, 64);
    assert.equal(tok.temporalFactor, 4);
    assert.equal(tok.clipFrames, 17);
    assert.throws(
      () => parseMagvit2Config({ ...videoConfig, ddconfig: { ...videoConfig.ddconfig, ch: 24 } }),
      /not divisible by GroupNorm's 32 groups/,
    );
    assert.throws(() => parseMagvit2Config({ ...videoConfig, n_embed: 100 }), /n_embed 100 must be 2\^embed_dim = 64/);
    assert.throws(() => parseMagvit2Config({ ddconfig: { ...videoConfig.ddconfig, ch_mult: [] } }), /ch_mult/);
  });

  it('encodes 1 + 4k frames to 1 + k latent frames and decodes back to 1 + 4k frames', () => {
    for (const k of [0, 1, 2]) {
      const frames = 1 + 4 * k;
      const x = video([1, 3, frames, 8, 8], k);
      const ids = tok.encode(x);
      assert.deepEqual(ids.shape, [1, 1 + k, 2, 2]);
      assert.deepEqual(tok.grid([3, frames, 8, 8]).shape, [1 + k, 2, 2]);
      assert.equal(ids.dtype, 'int64');
      for (const v of E.toArray(ids)) assert.ok(Number.isInteger(v) && v >= 0 && v < 64);
      const y = tok.decode(ids);
      assert.deepEqual(y.shape, [1, 3, frames, 8, 8]);
    }
  });

  it("decode(encode(x)) equals decoding the encoder's own ±1 codes", () => {
    const x = video([2, 3, 5, 8, 8], 7);
    const { quantized, indices } = tok.encodeFull(x);
    const direct = E.jit((q: Tensor) => tok.model.decode(q))(quantized);
    const viaIds = tok.decode(indices);
    const a = E.toArray(direct),
      b = E.toArray(viaIds);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
  });

  it('depth-to-space reads the channel index as (block offsets, C) like the reference, not pixel_shuffle order', () => {
    // 2 output channels, block (1, 2, 2): input channel ((ih·2 + iw)·2 + c).
    const x = E.tensor(
      Array.from({ length: 8 }, (_, i) => i),
      [1, 8, 1, 1, 1],
    );
    const y = depthToSpaceBlocks(x, [1, 2, 2]);
    assert.deepEqual(y.shape, [1, 2, 1, 2, 2]);
    assert.deepEqual(E.toArray(y), [0, 2, 4, 6, 1, 3, 5, 7]);
  });

  it('compiled encode follows weight updates (recompiles when a weight tensor is replaced)', () => {
    const t = new Magvit2Tokenizer(videoConfig);
    const x = video([1, 3, 1, 8, 8], 3);
    const before = E.toArray(t.encodeFull(x).latent);
    const bias = t.model.encoder.conv_out.namedParams().find(([n]) => n.endsWith('bias'))![1];
    bias.value = E.add(bias.value, 1);
    const after = E.toArray(t.encodeFull(x).latent);
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(after[i]! - before[i]! - 1) < 1e-4);
  });

  it('the image model tokenizes a clip frame by frame: grid [T, h, w], same ids as each frame alone', () => {
    const img = new Magvit2Tokenizer(imageConfig);
    assert.equal(img.clipFrames, 1);
    const x = video([1, 3, 3, 8, 8], 5);
    const ids = img.encode(x);
    assert.deepEqual(ids.shape, [1, 3, 4, 4]);
    assert.deepEqual(img.grid([3, 3, 8, 8]).shape, [3, 4, 4]);
    const second = img.encode(E.narrow(x, 2, 1, 1));
    assert.deepEqual(E.toArray(second), E.toArray(E.narrow(ids, 1, 1, 1)));
    const y = img.decode(ids);
    assert.deepEqual(y.shape, [1, 3, 3, 8, 8]);
    const y1 = img.decode(E.narrow(ids, 1, 1, 1));
    const a = E.toArray(E.narrow(y, 2, 1, 1)),
      b = E.toArray(y1);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
  });
});

describe('MAGVIT-v2 training gradients', () => {
  it('L1 + LFQ loss reaches every encoder and decoder weight through the straight-through codes', () => {
    const model = new Magvit2Model(parseMagvit2Config(videoConfig));
    const params = model.trainableParams();
    const x = video([1, 3, 5, 8, 8], 9);
    const step = E.valueAndGrad((ws: Tensor[], v: Tensor) =>
      bindParams(
        params.map(([, p]) => p),
        ws,
        () => {
          model.train();
          const { recon, losses } = forwardTrain(model, v);
          return E.add(E.l1Loss(recon, v), lfqLoss(losses));
        },
      ),
    );
    const [loss, grads] = step(
      params.map(([, p]) => p.value),
      x,
    ) as [Tensor, Tensor[]];
    assert.ok(Number.isFinite(E.item(loss)));
    const dead = params.filter((_, i) => !E.toArray(grads[i]!).some((v) => v !== 0)).map(([n]) => n);
    assert.deepEqual(dead, []);
    assert.ok(params.some(([n]) => n.startsWith('encoder.conv_in')));
  });
});

describe('MAGVIT-v2 quantizer warm-up', () => {
  it(
    'the decoder sees the continuous latent at α = 0, ' +
      'the ±1 codes at α = 1, and the latent gets the identity gradient',
    () => {
      const model = new Magvit2Model(parseMagvit2Config(videoConfig));
      model.train();
      const x = video([1, 3, 5, 8, 8], 11);
      const recon = (alpha?: number) =>
        E.toArray(
          E.jit((v: Tensor) => forwardTrain(model, v, alpha === undefined ? undefined : E.scalar(alpha)).recon)(x),
        );
      const latent = E.jit((v: Tensor) => model.encode(v).latent)(x);
      const direct = E.toArray(E.jit((z: Tensor) => model.decode(z))(latent));
      const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-5);
      assert.ok(close(recon(0), direct), 'α = 0: decoder of the latent');
      assert.ok(close(recon(1), recon()), 'α = 1: the straight-through codes');
      assert.ok(!close(recon(0.5), recon()) && !close(recon(0.5), direct));
      // d/dz of sum(latent + α·(code − latent)) is 1 for any α
      const g = E.valueAndGrad((z: Tensor) =>
        E.sum(E.add(z, E.mul(E.sub(model.quantize.forward(z).quantized, z), E.scalar(0.3)))),
      )(latent) as [Tensor, Tensor];
      assert.ok(E.toArray(g[1]).every((v) => Math.abs(v - 1) < 1e-6));
    },
  );

  it('parses quantizer_warmup as a whole number of steps and the natural preset carries it', async () => {
    assert.equal(parseMagvit2Config({ ...videoConfig, quantizer_warmup: 400 }).quantizer_warmup, 400);
    assert.equal(parseMagvit2Config(videoConfig).quantizer_warmup, undefined);
    assert.throws(
      () => parseMagvit2Config({ ...videoConfig, quantizer_warmup: -1 }),
      /quantizer_warmup must be a whole number of steps/,
    );
    const { magvit2Trainer } = await import('../../src/tokenizers/magvit2/kind.js');
    const cfg = magvit2Trainer.modelConfig(magvit2Trainer.presets.natural!, { size: 48, frames: 9, channels: 3 });
    assert.equal((cfg as { quantizer_warmup?: number }).quantizer_warmup, 400);
    assert.equal((cfg as { norm_groups?: number }).norm_groups, 8);
    assert.equal(
      'quantizer_warmup' in
        magvit2Trainer.modelConfig(magvit2Trainer.presets.tiny!, { size: 64, frames: 5, channels: 1 }),
      false,
    );
  });
});

describe('MAGVIT-v2 norm groups', () => {
  it(
    'norm_groups sets every GroupNorm of both models (32 when absent, ' +
      'as the reference) and is checked against the widths',
    async () => {
      const { GroupNorm } = await import('../../src/nn/index.js');
      const { AdaptiveGroupNorm } = await import('../../src/tokenizers/magvit2/layers.js');
      const groupsOf = (m: Magvit2Model) => {
        const found = new Set<number>();
        const walk = (x: unknown, seen = new Set<unknown>()) => {
          if (!x || typeof x !== 'object' || seen.has(x)) return;
          seen.add(x);
          if (x instanceof GroupNorm || x instanceof AdaptiveGroupNorm)
            found.add(x instanceof GroupNorm ? x.groups : x.norm.groups);
          for (const v of Object.values(x)) walk(v, seen);
        };
        walk(m);
        return [...found];
      };
      assert.deepEqual(groupsOf(new Magvit2Model(parseMagvit2Config(videoConfig))), [32]);
      const eight = new Magvit2Model(parseMagvit2Config({ ...videoConfig, norm_groups: 8 }));
      assert.deepEqual(groupsOf(eight), [8]);
      const x = video([1, 3, 5, 8, 8], 13);
      assert.deepEqual(E.jit((v: Tensor) => eight.decode(eight.encode(v).quantized))(x).shape, [1, 3, 5, 8, 8]);
      assert.throws(
        () => parseMagvit2Config({ ...videoConfig, norm_groups: 5 }),
        /not divisible by GroupNorm's 5 groups/,
      );
      assert.throws(
        () => parseMagvit2Config({ ...videoConfig, norm_groups: 0 }),
        /norm_groups must be a positive whole number/,
      );
    },
  );
});

describe('MAGVIT-v2 without the output norms', () => {
  it(
    'out_norm: false drops the last GroupNorm of encoder and ' +
      "decoder (weights and all), and a clip's colour reaches the codes",
    () => {
      const plain = new Magvit2Model(parseMagvit2Config({ ...videoConfig, out_norm: false }));
      const keys = plain.namedParams().map(([n]) => n);
      assert.ok(!keys.some((n) => n.includes('norm_out')));
      assert.ok(
        new Magvit2Model(parseMagvit2Config(videoConfig)).namedParams().some(([n]) => n === 'decoder.norm_out.weight'),
      );
      assert.throws(() => parseMagvit2Config({ ...videoConfig, out_norm: 'no' }), /out_norm must be true or false/);
      // Two flat clips of different brightness: without the output norm the latent still follows the level.
      const flat = (v: number) => E.tensor(new Float32Array(3 * 5 * 8 * 8).fill(v), [1, 3, 5, 8, 8]);
      const spread = (m: Magvit2Model) => {
        const enc = E.jit((x: Tensor) => m.encode(x).latent);
        const a = E.toArray(enc(flat(-0.8))),
          b = E.toArray(enc(flat(0.6)));
        return Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0) / a.length);
      };
      assert.ok(spread(plain) > 0.05, `latent moves with the level: ${spread(plain)}`);
    },
  );
});

describe('MAGVIT-v2 with per-frame norms', () => {
  const causal = { ...videoConfig, causal_norm: true };
  const prefixClose = (a: Tensor, b: Tensor, frames: number) => {
    const [n, c, , h, w] = a.shape as [number, number, number, number, number];
    const x = E.toArray(a),
      y = E.toArray(b);
    const ta = a.shape[2]!,
      tb = b.shape[2]!;
    let worst = 0;
    for (let i = 0; i < n * c; i++)
      for (let t = 0; t < frames; t++)
        for (let k = 0; k < h * w; k++) {
          worst = Math.max(worst, Math.abs(x[(i * ta + t) * h * w + k]! - y[(i * tb + t) * h * w + k]!));
        }
    return worst;
  };

  it("causal_norm makes encoder and decoder causal: a clip's first 1 + 4k frames code and decode alike alone", () => {
    E.seed(11);
    const m = new Magvit2Model(parseMagvit2Config(causal));
    E.seed(11);
    const ref = new Magvit2Model(parseMagvit2Config(videoConfig));
    assert.deepEqual(
      m.namedParams().map(([n]) => n),
      ref.namedParams().map(([n]) => n),
      'same weights, so a checkpoint loads into either',
    );
    const clip = video([2, 3, 9, 8, 8], 21);
    const head = E.narrow(clip, 2, 0, 5);
    const enc = (mm: Magvit2Model) => E.jit((x: Tensor) => mm.encode(x).latent);
    const full = enc(m)(clip),
      part = enc(m)(head);
    assert.deepEqual(part.shape.slice(2), [2, 2, 2]);
    assert.ok(prefixClose(full, part, 2) < 1e-4, `encoder prefix differs by ${prefixClose(full, part, 2)}`);
    // The reference's clip-wide statistics let later frames change earlier codes; the test would catch that.
    assert.ok(prefixClose(enc(ref)(clip), enc(ref)(head), 2) > 1e-3);
    const dec = E.jit((z: Tensor) => m.decode(z));
    const zq = E.jit((x: Tensor) => m.encode(x).quantized)(clip);
    const whole = dec(zq),
      first = dec(E.narrow(zq, 2, 0, 2));
    assert.deepEqual(first.shape, [2, 3, 5, 8, 8]);
    assert.ok(prefixClose(whole, first, 5) < 1e-4, `decoder prefix differs by ${prefixClose(whole, first, 5)}`);
    // A single frame is an image: coded alone it matches frame 0 of the clip.
    assert.ok(prefixClose(full, enc(m)(E.narrow(clip, 2, 0, 1)), 1) < 1e-4);
  });

  it(
    'trains (gradients reach every weight, the per-frame ' +
      'adaptive norm matches finite differences); refused for images',
    async () => {
      const { AdaptiveGroupNorm } = await import('../../src/tokenizers/magvit2/layers.js');
      const model = new Magvit2Model(parseMagvit2Config(causal));
      const params = model.trainableParams();
      const step = E.valueAndGrad((ws: Tensor[], v: Tensor) =>
        bindParams(
          params.map(([, p]) => p),
          ws,
          () => {
            const { recon, losses } = forwardTrain(model, v);
            return E.add(E.l1Loss(recon, v), lfqLoss(losses));
          },
        ),
      );
      const [loss, grads] = step(
        params.map(([, p]) => p.value),
        video([1, 3, 5, 8, 8], 9),
      ) as [Tensor, Tensor[]];
      assert.ok(Number.isFinite(E.item(loss)));
      assert.deepEqual(
        params.filter((_, i) => !E.toArray(grads[i]!).some((v) => v !== 0)).map(([n]) => n),
        [],
      );
      // 2 latent frames spread over 5 frames (r = 4), gradients to x, zq and the conditioning weights.
      const ada = new AdaptiveGroupNorm(3, 4, { groups: 2, perFrame: true });
      const lin = ada.namedParams().map(([, p]) => p);
      const f = (x: Tensor, zq: Tensor, gw: Tensor, bw: Tensor) =>
        bindParams(lin, [gw, lin[1]!.value, bw, lin[3]!.value], () => ada.forward(x, zq));
      const randn = (shape: number[], seed: number) =>
        E.concrete(
          new Rng(seed).normal(
            shape.reduce((a, b) => a * b, 1),
            0,
            1,
          ),
          shape,
          'float32',
        );
      const r = E.gradcheck(
        f,
        [randn([1, 4, 5, 2, 2], 1), randn([1, 3, 2, 2, 2], 2), randn([4, 3], 3), randn([4, 3], 4)],
        { eps: 1e-2, directions: 4 },
      );
      assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
      assert.throws(
        () => parseMagvit2Config({ ...imageConfig, causal_norm: true }),
        /causal_norm applies to the video tokenizer/,
      );
      assert.throws(() => parseMagvit2Config({ ...videoConfig, causal_norm: 1 }), /causal_norm must be true or false/);
    },
  );
});
