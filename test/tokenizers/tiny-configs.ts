/**
 * The smallest tokenizer configs the tests build, in the reference's config vocabulary: one copy for every test
 * that needs a tiny MAGVIT-v2 or LARP.
 */

/** MAGVIT-v2 video, ch_mult [2, 2, 1]: two (2,2,2) downsamplings, 4× in time (1 + 4k → 1 + k) and in space. */
export const TINY_MAGVIT2_VIDEO = {
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
  kind: 'video',
};

/** LARP on 4×8×8 clips with `tokens` holistic tokens, a 32-code stochastic VQ and, optionally, a prior. */
export function tinyLarp(tokens: number, prior: Record<string, unknown> | null = null): Record<string, unknown> {
  return {
    bottleneck: {
      name: 'bottleneck',
      args: {
        bottleneck_dim: 4,
        norm: 'none',
        regularizer: {
          name: 'vq',
          args: {
            codebook_size: 32,
            commitment_loss_weight: 0.25,
            codebook_loss_weight: 1.0,
            entropy_loss_weight: 0.0,
            l2_normalized: true,
            stochastic: true,
            stochastic_temperature: 0.03,
          },
        },
      },
    },
    prior_model: prior ?? { name: 'none' },
    bottleneck_token_num: tokens,
    input_size: 8,
    frame_num: 4,
    temporal_patch_size: 2,
    patch_size: 4,
    decoder_temporal_patch_size: 2,
    decoder_patch_size: 4,
    in_channels: 3,
    query_init_std: 0.02,
    encoder_hidden_size: 16,
    decoder_hidden_size: 16,
    encoder_num_heads: 2,
    decoder_num_heads: 2,
    encoder_depth: 1,
    decoder_depth: 1,
  };
}
