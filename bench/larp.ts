import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { AdamW, constantLr, TrainStep } from '../src/nn/train.js';
import { larpObjective } from '../src/tokenizers/larp/loss.js';
import { LarpTokenizer } from '../src/tokenizers/larp/tokenizer.js';
import { benchTokenizer } from './timing.js';

/**
 * LARP-L (patch 4×8×8, width 768, 12 heads, 12 + 12 layers, 1024 queries, codebook 8192×16) with the gptc-S
 * prior on 1×3×16×128×128, as ../../shared/bench/torch_larp.py --bench: encode (deterministic ids), decode
 * (ids → codebook rows → decoder), and one training step (L1 + 0.1·VQ losses + 0.06·prior CE, one teacher-forced
 * prior round, sampled codes, Adam lr 1e-4, betas 0.5/0.9). `--small` runs a narrow variant to check the script.
 * Also int8 encode/decode (weights baked, Linear layers as int8 matmuls calibrated on the input; `--no-int8`
 * skips it) timed alternately with fp32; `--no-train` skips the training step.
 */
export async function main(args: string[]): Promise<void> {
  const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
  const small = args.includes('--small');
  E.setRuntimeDefaults({ threads });
  E.seed(0);
  const width = small ? 64 : 768,
    depth = small ? 2 : 12,
    heads = small ? 4 : 12;
  const config = {
    bottleneck: {
      name: 'bottleneck',
      args: {
        bottleneck_dim: 16,
        norm: 'none',
        regularizer: {
          name: 'vq',
          args: {
            codebook_size: 8192,
            commitment_loss_weight: 0.25,
            codebook_loss_weight: 1.0,
            entropy_loss_weight: 0.0,
            entropy_loss_temperature: 0.01,
            l2_normalized: true,
            stochastic: true,
            stochastic_temperature: 0.03,
          },
        },
      },
    },
    prior_model: {
      name: small ? 'gptc-XXS' : 'gptc-S',
      use_mix_ss: false,
      n_rounds: 1,
      no_dropout: false,
      latent_ce_temperature: 1.0,
      args: { l2_normalized: true },
    },
    bottleneck_token_num: 1024,
    input_size: 128,
    frame_num: 16,
    temporal_patch_size: 4,
    patch_size: 8,
    decoder_temporal_patch_size: 4,
    decoder_patch_size: 8,
    in_channels: 3,
    transformer_name: 'transformer_encoder_parallel',
    encoder_name: 'none',
    decoder_name: 'none',
    latent_pe_scale_factor: 10000,
    query_init_std: 0.02,
    encoder_hidden_size: width,
    decoder_hidden_size: width,
    encoder_num_heads: heads,
    decoder_num_heads: heads,
    encoder_depth: depth,
    decoder_depth: depth,
    learned_encoder_patch_pe: false,
    learned_encoder_latent_query_embed: true,
    learned_decoder_latent_pe: false,
    learned_decoder_patch_query_embed: false,
    use_encoder_patch_token_type_embed: false,
    use_encoder_latent_query_token_type_embed: false,
    use_decoder_latent_token_type_embed: false,
    use_decoder_patch_query_token_type_embed: true,
    encoder_query_gaussian_init: true,
  };
  const tok = LarpTokenizer.fromConfig(config);
  const model = tok.model;
  const params = model.parameterCount();
  // LARP's data range is [0, 1]; the Tokenizer face takes [-1, 1] and converts.
  const u = E.defaultRng().uniform(3 * 16 * 128 * 128);
  const x = E.concrete(
    u.map((v) => 2 * v - 1),
    [1, 3, 16, 128, 128],
    'float32',
  );
  console.error(`LARP-L + gptc-S: ${params} params, input [1,3,16,128,128], ${threads} threads`);

  const int8 = args.includes('--no-int8') ? undefined : new LarpTokenizer(model);
  int8?.setPrecision('int8');
  const step = args.includes('--no-train')
    ? null
    : new TrainStep(
        model,
        (v: Tensor) =>
          larpObjective(model, { video: v }, { recon: 'l1', lossQWeight: 0.1, priorWeight: 0.06, priorRounds: 1 }).loss,
        {
          optimizer: new AdamW({ betas: [0.5, 0.9], weightDecay: 0 }),
          schedule: constantLr(1e-4),
        },
      );
  benchTokenizer(tok, step, x, { threads, params }, int8);
}
