import * as E from '../../engine/core.js';
import { int } from '../../util/options.js';
import { quantizerWarmupBlend, type TokenizerKind, type TokenizerTrainer } from '../kind.js';
import { larpObjective } from './loss.js';
import { larpParity } from './parity.js';
import { LarpTokenizer } from './tokenizer.js';

/**
 * LARP presets: the reference's model.args JSON at CPU scale (patch 4×8×8, holistic queries, 16-d SVQ codebook,
 * a small GPTC prior). `--tokens` sets the number of holistic queries (any N), `--no-prior` drops the prior. The
 * tiny preset (`small: true`) adds the quantizer's entropy term (weight 1 inside loss_q), a centred patch-embedding
 * bias and routed init, without which the tiny model's codebook collapses and its reconstructions stay at each
 * clip's mean colour (docs/larp-small-scale.md).
 */
function larpArgs(o: {
  size: number;
  frames: number;
  channels: number;
  width: number;
  depth: number;
  heads: number;
  tokens: number;
  codebook: number;
  prior: boolean;
  priorSize: [number, number, number];
  small?: boolean;
  quantizerWarmup?: number;
}) {
  return {
    bottleneck: {
      name: 'bottleneck',
      args: {
        bottleneck_dim: 16,
        norm: 'none',
        regularizer: {
          name: 'vq',
          args: {
            codebook_size: o.codebook,
            commitment_loss_weight: 0.25,
            codebook_loss_weight: 1.0,
            entropy_loss_weight: o.small ? 1.0 : 0.0,
            entropy_loss_temperature: 0.01,
            l2_normalized: true,
            stochastic: true,
            stochastic_temperature: 0.03,
          },
        },
      },
    },
    prior_model: o.prior
      ? {
          name: 'gptc-vtok',
          use_mix_ss: true,
          mix_ss_max_ratio: 0.5,
          mix_ss_peak_steps_ratio: 0.3,
          n_rounds: 2,
          avg_loss_over_rounds: true,
          no_grad_before_last_round: false,
          no_dropout: false,
          latent_ce_temperature: 1.0,
          args: { l2_normalized: true, max_seq_len: o.tokens },
        }
      : { name: 'none' },
    gptc_sizes: { 'gptc-vtok': { n_layer: o.priorSize[0], n_head: o.priorSize[1], n_embd: o.priorSize[2] } },
    bottleneck_token_num: o.tokens,
    input_size: o.size,
    frame_num: o.frames,
    temporal_patch_size: 4,
    patch_size: 8,
    decoder_temporal_patch_size: 4,
    decoder_patch_size: 8,
    in_channels: o.channels,
    transformer_name: 'transformer_encoder_parallel',
    encoder_name: 'none',
    decoder_name: 'none',
    latent_pe_scale_factor: 10000,
    query_init_std: 0.02,
    ...(o.small ? { patch_embed_center: 0.5, routed_init_gain: 1.5 } : {}),
    ...(o.quantizerWarmup ? { quantizer_warmup: o.quantizerWarmup } : {}),
    encoder_hidden_size: o.width,
    decoder_hidden_size: o.width,
    encoder_num_heads: o.heads,
    decoder_num_heads: o.heads,
    encoder_depth: o.depth,
    decoder_depth: o.depth,
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
}

/**
 * A LARP preset's model options: transformer width, depth and heads, queries, codebook, prior [layers, heads, width].
 */
export interface LarpModelOptions {
  width: number;
  depth: number;
  heads: number;
  tokens: number;
  codebook: number;
  priorSize: [number, number, number];
  /** Trained with the autoregressive prior unless false. */
  prior?: boolean;
  small?: boolean;
  quantizerWarmup?: number;
}

export const larpTrainer: TokenizerTrainer<LarpModelOptions> = {
  presets: {
    tiny: {
      size: 32,
      frames: 8,
      batch: 8,
      steps: 2000,
      lr: 1e-3,
      model: { width: 64, depth: 2, heads: 4, tokens: 32, codebook: 256, priorSize: [2, 4, 64], small: true },
    },
    small: {
      size: 64,
      frames: 16,
      batch: 8,
      steps: 6000,
      lr: 5e-4,
      model: { width: 128, depth: 4, heads: 4, tokens: 64, codebook: 1024, priorSize: [4, 4, 128] },
    },
    // natural: the small model on colour clips of `vtok prepare natural`, with the tiny preset's codebook
    // safeguards, 128 queries (0.02 bits per pixel at 16×64²) and a quantizer warm-up, without which its codebook
    // collapses on these clips. It still reconstructs below a clip's mean colour after 2,000 steps
    // (docs/larp-small-scale.md, "Natural video"): a starting point, not a working recipe.
    natural: {
      size: 64,
      frames: 16,
      batch: 8,
      steps: 3000,
      lr: 5e-4,
      model: {
        width: 128,
        depth: 4,
        heads: 4,
        tokens: 128,
        codebook: 1024,
        priorSize: [4, 4, 128],
        small: true,
        quantizerWarmup: 300,
      },
    },
    base: {
      size: 64,
      frames: 16,
      batch: 16,
      steps: 20000,
      lr: 3e-4,
      model: { width: 256, depth: 6, heads: 8, tokens: 128, codebook: 4096, priorSize: [6, 6, 192] },
    },
  },
  options: [
    {
      flag: '--tokens <n>',
      description: 'number of holistic tokens',
      parse: int('--tokens', { min: 1, max: 4096 }),
      apply: (m, n) => ({ ...m, tokens: n as number }),
    },
    {
      flag: '--no-prior',
      description: 'train without the autoregressive prior',
      apply: (m, on) => ({ ...m, prior: on as boolean }),
    },
  ],
  modelConfig(preset, data) {
    const m = preset.model;
    return larpArgs({ ...m, size: data.size, frames: data.frames, channels: data.channels, prior: m.prior !== false });
  },
  build(config, totalSteps) {
    const tokenizer = LarpTokenizer.fromConfig(config, config.gptc_sizes as never);
    const model = tokenizer.model;
    return {
      tokenizer,
      module: model,
      loss(video, step) {
        // the scheduled-sampling replacement rate of this step, computed in the graph from the fed step number
        const peak = Math.max(1, (model.cfg.prior?.mixSsPeakStepsRatio ?? 0.3) * totalSteps);
        const ssRatio = E.mul(E.minimum(E.div(step, peak), E.scalar(1)), model.cfg.prior?.mixSsMaxRatio ?? 0.5);
        const alpha = quantizerWarmupBlend(step, model.cfg.quantizerWarmup);
        return larpObjective(model, { video, ssRatio }, { recon: 'l1', lossQWeight: 0.1, priorWeight: 0.06, alpha });
      },
    };
  },
};

/** LARP: a video tokenizer to a 1-D grid of N holistic tokens, with an optional autoregressive prior. */
export const larpKind: TokenizerKind = {
  name: 'larp',
  title: 'LARP',
  create(config) {
    const tokenizer = LarpTokenizer.fromConfig(config, config.gptc_sizes as never);
    return { tokenizer, module: tokenizer.model };
  },
  train: larpTrainer,
  parity: larpParity,
};
