import * as E from '../../engine/core.js';
import { int } from '../../util/options.js';
import { quantizerWarmupBlend, type TokenizerKind, type TokenizerTrainer } from '../kind.js';
import { forwardTrain } from './model.js';
import { magvit2Parity } from './parity.js';
import { Magvit2Tokenizer } from './tokenizer.js';

/**
 * MAGVIT-v2 presets: Open-MAGVIT2's causal 3D CNN config at CPU scale. The loss is the paper's: L2
 * reconstruction ("we use L2 + perceptual + adversarial", the MAGVIT-v2 authors) + 0.1·(per-sample entropy −
 * codebook entropy) + 0.25·commitment (the released weights); with --gan the shared task adds the 3D PatchGAN term.
 * (L1 collapses to all-background on sparse clips such as Moving MNIST: its per-pixel optimum is the median.)
 * `--bits` sets the LFQ vocabulary 2^bits.
 */
export interface Magvit2ModelOptions {
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  bits: number;
  batch_max?: number;
  quantizer_warmup?: number;
  norm_groups?: number;
  out_norm?: boolean;
  causal_norm?: boolean;
}

export const magvit2Trainer: TokenizerTrainer<Magvit2ModelOptions> = {
  presets: {
    // micro: the tiny model on 48×48 clips (about half its compute), for studies of several runs on a shared 2-core CPU
    micro: {
      size: 48,
      frames: 5,
      batch: 4,
      steps: 300,
      lr: 1e-3,
      model: { ch: 32, ch_mult: [1, 1, 2], num_res_blocks: 1, bits: 10 },
    },
    tiny: {
      size: 64,
      frames: 5,
      batch: 4,
      steps: 1500,
      lr: 1e-3,
      model: { ch: 32, ch_mult: [1, 1, 2], num_res_blocks: 1, bits: 10 },
    },
    // coarse: the tiny model at half width with a third spatial downsampling (8×: 5×64² → 5×8×8 = 320 tokens) and
    // 2^12 codes, so a prefix LM over Moving MNIST sees a quarter of the tiny tokenizer's sequence; 8 GroupNorm groups
    // (width 16). docs/t2v-mnist.md ("Levers") has its runs: train it on 5-frame clips, not 3
    coarse: {
      size: 64,
      frames: 5,
      batch: 4,
      steps: 3000,
      lr: 1e-3,
      model: { ch: 16, ch_mult: [1, 1, 1, 2], num_res_blocks: 1, bits: 12, norm_groups: 8 },
    },
    small: {
      size: 64,
      frames: 9,
      batch: 4,
      steps: 6000,
      lr: 5e-4,
      model: { ch: 64, ch_mult: [1, 2, 2, 4], num_res_blocks: 2, bits: 14 },
    },
    // natural: the paper's strides (8× space, 4× time: 17×128² → 5×16×16 tokens, 18-bit LFQ = 0.083 bits per pixel)
    // at the narrowest width, on 9×48² crops (the model is fully convolutional). A 400-step quantizer warm-up: LFQ
    // from step 0 with a batch of 2 clips trained to content-free codes. 8 GroupNorm groups (4 channels each at width
    // 32, as the reference's 32 at width 128), no norm before the last convolutions, and per-frame norm statistics
    // (causal_norm): with clip-wide statistics 9-frame training lost 4 dB on 17-frame clips. The shipped model starts
    // on single frames (`--frames 1 --batch 16`); docs/magvit2-natural-runs.md has the runs.
    natural: {
      size: 48,
      frames: 9,
      batch: 2,
      steps: 3000,
      lr: 1e-3,
      model: {
        ch: 32,
        ch_mult: [1, 2, 2, 4],
        num_res_blocks: 1,
        bits: 18,
        quantizer_warmup: 400,
        norm_groups: 8,
        out_norm: false,
        causal_norm: true,
      },
    },
    base: {
      size: 64,
      frames: 17,
      batch: 8,
      steps: 20000,
      lr: 3e-4,
      model: { ch: 128, ch_mult: [1, 2, 2, 4], num_res_blocks: 4, bits: 18 },
    },
  },
  options: [
    {
      flag: '--bits <n>',
      description: 'LFQ bits (vocabulary 2^bits)',
      parse: int('--bits', { min: 1, max: 24 }),
      apply: (m, n) => ({ ...m, bits: n as number }),
    },
  ],
  modelConfig(preset, data) {
    const m = preset.model,
      bits = m.bits;
    return {
      ddconfig: {
        double_z: false,
        z_channels: bits,
        resolution: data.size,
        in_channels: data.channels,
        out_ch: data.channels,
        ch: m.ch,
        ch_mult: m.ch_mult,
        num_res_blocks: m.num_res_blocks,
      },
      n_embed: 2 ** bits,
      embed_dim: bits,
      sample_minimization_weight: 1.0,
      batch_maximization_weight: m.batch_max ?? 1.0,
      kind: 'video',
      ...(m.quantizer_warmup ? { quantizer_warmup: m.quantizer_warmup } : {}),
      ...(m.norm_groups ? { norm_groups: m.norm_groups } : {}),
      ...(m.out_norm === false ? { out_norm: false } : {}),
      ...(m.causal_norm ? { causal_norm: true } : {}),
    };
  },
  build(config) {
    const tokenizer = new Magvit2Tokenizer(config);
    const model = tokenizer.model;
    return {
      tokenizer,
      module: model,
      loss(video, step) {
        const alpha = quantizerWarmupBlend(step, model.cfg.quantizer_warmup ?? 0);
        const { recon, losses } = forwardTrain(model, video, alpha);
        const rec = E.mseLoss(recon, video);
        const lfq = E.add(E.mul(losses.entropy, 0.1), E.mul(losses.commitment, 0.25));
        const loss = E.add(rec, alpha ? E.mul(lfq, alpha) : lfq);
        return {
          loss,
          metrics: {
            recon: rec,
            entropy: losses.entropy,
            h_sample: losses.perSampleEntropy,
            h_codebook: losses.codebookEntropy,
            commit: losses.commitment,
          },
          recon,
        };
      },
    };
  },
};

/** MAGVIT-v2 (Open-MAGVIT2's causal 3D CNN with LFQ): a video tokenizer on a [t, h, w] grid. */
export const magvit2Kind: TokenizerKind = {
  name: 'magvit2',
  title: 'MAGVIT-v2',
  create(config) {
    const tokenizer = new Magvit2Tokenizer(config);
    return { tokenizer, module: tokenizer.model };
  },
  train: magvit2Trainer,
  parity: magvit2Parity,
};
