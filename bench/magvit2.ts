import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { AdamW, constantLr, TrainStep } from '../src/nn/train.js';
import { forwardTrain } from '../src/tokenizers/magvit2/model.js';
import { Magvit2Tokenizer } from '../src/tokenizers/magvit2/tokenizer.js';
import { benchTokenizer } from './timing.js';

/**
 * Open-MAGVIT2's released video tokenizer (ch 128, ch_mult 1,2,2,4, 4 ResBlocks per level, 18-bit LFQ) on
 * 1×3×17×64×64 in [-1, 1], as ../../shared/bench/torch_magvit2.py --bench: encode (encoder + LFQ ids), decode
 * (ids → codes → decoder), and one training step (L1 + 0.1·entropy + 0.25·commitment, Adam lr 1e-4, betas
 * 0.5/0.9). `--small` runs a narrow variant (the architecture of the shipped natural-video model, ch 32, one
 * ResBlock per level, 8 GroupNorm groups, no output norms, per-frame norm statistics) and `--size=N` sets the frame
 * size. Also int8 encode/decode (the same weights through src/engine/quantize.ts, calibrated on the input; `--no-int8`
 * skips it) timed alternately with fp32; `--no-train` skips the training step.
 */
export async function main(args: string[]): Promise<void> {
  const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
  const small = args.includes('--small');
  // --size=128: the frame size (the natural-video model, `--small`, is used at 17×128×128)
  const size = Number(args.find((a) => a.startsWith('--size='))?.slice(7) ?? 64);
  E.setRuntimeDefaults({ threads });
  E.seed(0);
  const config = {
    ddconfig: {
      double_z: false,
      z_channels: 18,
      resolution: 64,
      in_channels: 3,
      out_ch: 3,
      ch: small ? 32 : 128,
      ch_mult: [1, 2, 2, 4],
      num_res_blocks: small ? 1 : 4,
    },
    n_embed: 2 ** 18,
    embed_dim: 18,
    sample_minimization_weight: 1,
    batch_maximization_weight: 1,
    kind: 'video',
    ...(small ? { norm_groups: 8, out_norm: false, causal_norm: true } : {}),
  };
  const tok = new Magvit2Tokenizer(config);
  const model = tok.model;
  const params = model.parameterCount();
  const x = E.concrete(
    E.defaultRng()
      .uniform(3 * 17 * size * size)
      .map((u) => 2 * u - 1),
    [1, 3, 17, size, size],
    'float32',
  );
  console.error(`magvit2 video: ${params} params, input [1,3,17,${size},${size}], ${threads} threads`);

  const int8 = args.includes('--no-int8') ? undefined : new Magvit2Tokenizer(config, model);
  int8?.setPrecision('int8');
  const step = args.includes('--no-train')
    ? null
    : new TrainStep(
        model,
        (v: Tensor) => {
          const { recon, losses } = forwardTrain(model, v);
          return E.add(E.l1Loss(recon, v), E.add(E.mul(losses.entropy, 0.1), E.mul(losses.commitment, 0.25)));
        },
        { optimizer: new AdamW({ betas: [0.5, 0.9], weightDecay: 0 }), schedule: constantLr(1e-4) },
      );
  benchTokenizer(tok, step, x, { threads, params }, int8, { idBits: config.embed_dim });
}
