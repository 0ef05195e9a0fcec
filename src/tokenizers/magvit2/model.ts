import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { Module } from '../../nn/index.js';
import { LFQ, type LFQLosses } from '../../quantizers/lfq.js';
import { type Magvit2Config, temporalStrides } from './config.js';
import { Decoder } from './decoder.js';
import { Encoder } from './encoder.js';

/**
 * The Open-MAGVIT2 tokenizer model (VQModel without the loss): encoder → LFQ → decoder. State-dict keys are the
 * reference's `encoder.*` / `decoder.*`; the LFQ has no weights. Video tensors are N×C×T×H×W, images N×C×H×W.
 */
export class Magvit2Model extends Module {
  encoder: Encoder;
  decoder: Decoder;
  quantize: LFQ;

  constructor(readonly cfg: Magvit2Config) {
    super();
    this.encoder = new Encoder(cfg);
    this.decoder = new Decoder(cfg);
    this.quantize = new LFQ({
      dim: cfg.embed_dim,
      bitOrder: cfg.lfq_order,
      sampleWeight: cfg.sample_minimization_weight,
      batchWeight: cfg.batch_maximization_weight,
    });
  }

  /** Pixels → pre-quantization latent, ±1 codes (straight-through), ids, and the LFQ losses in training mode. */
  encode(x: Tensor): { latent: Tensor; quantized: Tensor; indices: Tensor; losses?: LFQLosses } {
    const latent = this.encoder.forward(x);
    return { latent, ...this.quantize.forward(latent) };
  }

  /** ±1 codes (or any latent) → pixels (not clamped). */
  decode(quantized: Tensor): Tensor {
    return this.decoder.forward(quantized);
  }

  /** ids [N, …grid] → pixels. */
  decodeIndices(indices: Tensor): Tensor {
    return this.decoder.forward(this.quantize.decode(indices));
  }

  /** Spatial downsampling factor (2 per level but the last). */
  get spatialFactor(): number {
    return 2 ** (this.cfg.ddconfig.ch_mult.length - 1);
  }

  /**
   * Latent [t, h, w] (video) or [h, w] (image) for an input of the given size (causal: T → ⌊(T−1)/s⌋ + 1 per stage).
   */
  latentShape(frames: number, height: number, width: number): number[] {
    const f = this.spatialFactor;
    if (height % f || width % f)
      throw new Error(`magvit2: ${height}×${width} is not divisible by the downsampling factor ${f}`);
    const t = temporalStrides(this.cfg).reduce((n, s) => Math.floor((n - 1) / s) + 1, frames);
    return this.cfg.kind === 'video' ? [t, height / f, width / f] : [height / f, width / f];
  }
}

/**
 * Recon = model(x) in training mode, with the quantizer losses: what a training step differentiates. With `alpha`
 * (a scalar in [0, 1]) the decoder sees latent + α·(code − latent), the straight-through code at α = 1; the
 * gradient to the latent is the identity at every α.
 */
export function forwardTrain(model: Magvit2Model, x: Tensor, alpha?: Tensor): { recon: Tensor; losses: LFQLosses } {
  const { latent, quantized, losses } = model.encode(x);
  const input = alpha ? E.add(latent, E.mul(E.sub(quantized, latent), alpha)) : quantized;
  return { recon: model.decode(input), losses: losses! };
}
