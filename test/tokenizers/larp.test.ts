import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { bindParams } from '../../src/nn/index.js';
import { AdamW, constantLr, TrainStep } from '../../src/nn/train.js';
import {
  larpLoss,
  LarpModel,
  LarpTokenizer,
  parseLarpConfig,
  priorLoss,
  priorPredict,
  scheduledSamplingRatio,
} from '../../src/tokenizers/larp/index.js';
import { Rng } from '../../src/util/rng.js';
import { tinyLarp } from './tiny-configs.js';

/** A tiny LARP: any token count, Tokenizer shapes, the prior loss path and joint training. */
const SIZES = { 'gptc-tiny': { n_layer: 1, n_head: 2, n_embd: 16 } };

const config = tinyLarp;

const PRIOR = {
  name: 'gptc-tiny',
  use_mix_ss: true,
  mix_ss_max_ratio: 0.5,
  mix_ss_peak_steps_ratio: 0.3,
  n_rounds: 2,
  no_dropout: true,
};

function video(n: number, seed: number): Tensor {
  return E.concrete(
    new Rng(seed).uniform(n * 3 * 4 * 8 * 8).map((v) => 2 * v - 1),
    [n, 3, 4, 8, 8],
    'float32',
  );
}

describe('LARP tokenizer', () => {
  for (const tokens of [1, 5, 12]) {
    it(`${tokens} holistic tokens: encode → ids [N, ${tokens}], decode → video`, () => {
      E.seed(tokens);
      const tok = LarpTokenizer.fromConfig(config(tokens));
      // the reference zero-initialises the head; give it weights so decode is not trivially zero
      tok.model.final_layer.linear.weight.value = E.randomNormal(tok.model.final_layer.linear.weight.shape);
      assert.deepEqual(tok.grid([3, 4, 8, 8]).shape, [tokens]);
      const x = video(2, 10 + tokens);
      const ids = tok.encode(x);
      assert.deepEqual([...ids.shape], [2, tokens]);
      assert.equal(ids.dtype, 'int64');
      assert.ok(E.toArray(ids).every((v) => v >= 0 && v < tok.vocabSize));
      assert.deepEqual(E.toArray(tok.encode(x)), E.toArray(ids), 'encoding is deterministic');
      const y = tok.decode(ids);
      assert.deepEqual([...y.shape], [2, 3, 4, 8, 8]);
      // decode is the model's decode of the codes, mapped from [0, 1] to [-1, 1]
      const ref = E.toArray(E.jit((i: Tensor) => tok.model.decodeIndices(i))(ids) as Tensor);
      E.toArray(y).forEach((v, i) => {
        assert.ok(Math.abs(v - (2 * ref[i]! - 1)) < 1e-5);
      });
    });
  }

  it('rejects clips of another size and unsupported configs', () => {
    const tok = LarpTokenizer.fromConfig(config(4));
    assert.throws(() => tok.grid([3, 8, 8, 8]), /4×8×8/);
    assert.throws(() => tok.grid([4, 8, 8]), /LARP: a clip is C×T×H×W, got \[4,8,8\]/);
    assert.throws(() => tok.encode(E.zeros([1, 3, 4, 16, 16])), /4×8×8/);
    assert.throws(() => parseLarpConfig({ ...config(4), learned_encoder_patch_pe: true }), /not implemented/);
    assert.throws(() => parseLarpConfig({ ...config(4), prior_model: { name: 'gptc-nope' } }), /unknown prior/);
    for (const bad of [-1, 2.5, 'x'])
      assert.throws(() => parseLarpConfig({ ...config(4), quantizer_warmup: bad }), /quantizer_warmup/);
    assert.equal(parseLarpConfig({ ...config(4), quantizer_warmup: 300 }).quantizerWarmup, 300);
    assert.equal(parseLarpConfig(config(4)).quantizerWarmup, 0);
  });

  it('training-mode encoding samples codes (SVQ), eval + deterministic takes the argmax', () => {
    E.seed(7);
    const model = new LarpModel(parseLarpConfig(config(64)));
    const x = E.mul(E.add(video(2, 8), 1), 0.5);
    const enc = E.jit((v: Tensor) => model.encode(v).indices);
    model.train();
    assert.notDeepEqual(E.toArray(enc(x)), E.toArray(enc(x)), 'two training-mode encodings differ');
    model.eval();
    model.quantizer.deterministic = true;
    const det = E.jit((v: Tensor) => model.encode(v).indices);
    assert.deepEqual(E.toArray(det(x)), E.toArray(det(x)));
  });
});

describe('LARP prior', () => {
  it(
    'replacement-rate schedule: linear ramp to the max ' + 'over the peak fraction, then constant; 1 without mix SS',
    () => {
      const p = parseLarpConfig(config(4, PRIOR), SIZES).prior!;
      assert.equal(scheduledSamplingRatio(p, 0, 1000), 0);
      assert.ok(Math.abs(scheduledSamplingRatio(p, 150, 1000) - 0.25) < 1e-12);
      assert.equal(scheduledSamplingRatio(p, 300, 1000), 0.5);
      assert.equal(scheduledSamplingRatio(p, 900, 1000), 0.5);
      assert.equal(scheduledSamplingRatio({ ...p, useMixSs: false }, 10, 1000), 1);
    },
  );

  it('scheduled sampling: ratio 0 repeats the teacher-forced round, ratio 1 feeds sampled codes', () => {
    E.seed(11);
    const model = new LarpModel(parseLarpConfig(config(6, PRIOR), SIZES)).eval();
    const idx = E.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], [2, 6], 'int64');
    const run = (rounds: number, ratio: number) =>
      E.item(
        E.jit((i: Tensor) => {
          const codes = model.quantizer.codebookEntry(i);
          return priorLoss(model, codes, i, { nRounds: rounds, ssRatio: ratio }).loss;
        })(idx),
      );
    const tf = run(1, 0);
    assert.ok(Math.abs(run(2, 0) - tf) < 1e-6);
    assert.ok(Math.abs(run(2, 1) - tf) > 1e-5);
  });

  it(
    'prior CE has correct gradients (gradcheck on the codes), ' + 'and reaches the encoder but not decoder or codebook',
    () => {
      E.seed(12);
      const model = new LarpModel(parseLarpConfig(config(6, PRIOR), SIZES)).eval();
      const labels = E.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 5], 'int64');
      const codes = model.quantizer.codebookEntry(E.tensor([7, 3, 1, 4, 1, 5, 8, 9, 2, 6, 5, 3], [2, 6], 'int64'));
      const r = E.gradcheck((c: Tensor) => E.crossEntropy(priorPredict(model, c).logits, labels), [codes]);
      assert.ok(r.maxError < 1e-3, JSON.stringify(r.checks));

      const named = model.trainableParams();
      const ps = named.map(([, p]) => p);
      const x = E.mul(E.add(video(2, 13), 1), 0.5);
      const grads = E.grad((w: Tensor[]) =>
        bindParams(ps, w, () => {
          const enc = model.encode(x);
          return priorLoss(model, enc.regularized_z, enc.indices, { nRounds: 2, ssRatio: 0.5 }).loss;
        }),
      )(ps.map((p) => p.value)) as Tensor[];
      const norm = (prefix: string) =>
        named.reduce(
          (s, [n], i) => (n.startsWith(prefix) ? s + E.toArray(grads[i]!).reduce((a, v) => a + v * v, 0) : s),
          0,
        );
      for (const p of [
        'prior_model.',
        'bottleneck.in_linear.',
        'encoder.',
        'encoder_latent_query_embed',
        'x_embedder.',
      ])
        assert.ok(norm(p) > 0, `${p} gets gradient`);
      for (const p of ['decoder.', 'final_layer.', 'bottleneck.out_linear.', 'bottleneck.regularizer.'])
        assert.equal(norm(p), 0, `${p} gets none`);
    },
  );

  it('tokenizer + prior train jointly in one compiled step: the loss goes down', () => {
    E.seed(14);
    const model = new LarpModel(parseLarpConfig(config(8, PRIOR), SIZES));
    const step = new TrainStep(model, larpLoss(model, { outputRecon: true }), {
      optimizer: new AdamW({ weightDecay: 0 }),
      schedule: constantLr(3e-3),
    });
    const batch = { video: video(2, 15), ssRatio: E.scalar(0.5) };
    const first = step.run(batch);
    assert.ok(first.metrics.prior_ce! > 0 && first.metrics.loss_q! > 0);
    assert.deepEqual([...first.outputs.recon!.shape], [2, 3, 4, 8, 8]);
    let last = first;
    for (let i = 0; i < 40; i++) last = step.run(batch);
    assert.ok(last.loss < 0.7 * first.loss, `loss ${first.loss} → ${last.loss}`);
    assert.ok(Number.isFinite(last.metrics.prior_ce));
  });
});
