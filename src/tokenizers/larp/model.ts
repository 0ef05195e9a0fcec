import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { buffer, constant, Linear, loadingWeights, Module, normal, Param, xavierUniform } from '../../nn/index.js';
import { StochasticVQ, type SvqOutput } from '../../quantizers/svq.js';
import type { LarpConfig } from './config.js';
import { Gptc } from './gptc.js';
import { pickRows, randomPositions, routeBlock } from './routed-init.js';
import { asBuffer, sincos1d, sincos3d } from './sincos.js';
import { OutputLayer, PatchEmbed3D, TransformerEncoderParallel } from './vit.js';

/** Seeds of routed init's fixed random positions (constants, so a config always rebuilds the same buffers). */
const ROUTED_PATCH_SEED = 0x1a2b,
  ROUTED_LATENT_SEED = 0x3c4d;

/**
 * LARP (Wang et al., ICLR 2025), the reference's LARPTokenizer module tree with its exact state_dict names.
 *
 *   video ─ patchify (Conv3d) + 3-D sin-cos ─┐
 *   holistic queries (learned, N of them) ───┴─ ViT over [patches ‖ queries] → query outputs
 *   → bottleneck in_linear → SVQ (cosine codebook, sampled / argmax) → out_linear            (encode)
 *   latents + 1-D sin-cos ─┐
 *   patch queries (3-D sin-cos + type vector) ─┴─ ViT → patch outputs → LayerNorm + Linear → unpatchify   (decode)
 *
 * The prior (GPTC) lives here too, as prior_model, because the reference trains and saves it with the tokenizer.
 * The model works on LARP's data range [0, 1]; the Tokenizer wrapper converts from vtok's [-1, 1].
 */
export class Bottleneck extends Module {
  in_linear: Linear;
  out_linear: Linear;
  regularizer: StochasticVQ;
  constructor(dim: number, cfg: LarpConfig) {
    super();
    this.in_linear = new Linear(dim, cfg.bottleneckDim);
    this.out_linear = new Linear(cfg.bottleneckDim, dim);
    this.regularizer = new StochasticVQ({
      codebookSize: cfg.codebookSize,
      dim: cfg.bottleneckDim,
      temperature: cfg.stochasticTemperature,
      commitmentLossWeight: cfg.commitmentLossWeight,
      codebookLossWeight: cfg.codebookLossWeight,
      entropyLossWeight: cfg.entropyLossWeight,
      entropyTemperature: cfg.entropyTemperature,
    });
  }
}

export interface LarpEncoding extends SvqOutput {
  /** out_linear(regularized_z): the decoder's input latents [B, N, D]. */
  encoded: Tensor;
  projected_z: Tensor;
  patchEmbed: Tensor;
  encoderOut: Tensor;
}

export class LarpModel extends Module {
  x_embedder: PatchEmbed3D;
  encoder_patch_pe: Param;
  encoder_latent_query_embed: Param;
  encoder: TransformerEncoderParallel;
  bottleneck: Bottleneck;
  decoder_latent_pe: Param;
  decoder_patch_query_embed: Param;
  decoder_patch_query_token_type_embed: Param;
  decoder: TransformerEncoderParallel;
  final_layer: OutputLayer;
  prior_model: Gptc | null;
  /** Token grid of the patches: [t, h, w]. */
  readonly grid: [number, number, number];

  constructor(readonly cfg: LarpConfig) {
    super();
    const d = cfg.hiddenSize,
      pt = cfg.temporalPatchSize,
      p = cfg.patchSize;
    this.grid = [cfg.frameNum / pt, cfg.inputSize / p, cfg.inputSize / p];
    this.x_embedder = new PatchEmbed3D([pt, p, p], cfg.inChannels, d);
    const patches = this.grid[0] * this.grid[1] * this.grid[2];
    const routed = cfg.routedInitGain !== null;
    // routed init (vtok-only, routed-init.ts) needs positions that tell patches apart: fixed random rows, not sin-cos
    const patchPe = routed
      ? asBuffer(randomPositions(patches, d, ROUTED_PATCH_SEED), d)
      : asBuffer(sincos3d(d, ...this.grid, cfg.patchPeScale), d);
    this.encoder_patch_pe = buffer(patchPe);
    this.encoder_latent_query_embed = new Param(normal([cfg.tokens, d], cfg.queryInitStd));
    this.encoder = new TransformerEncoderParallel(d, cfg.encoderDepth, cfg.encoderHeads);
    this.bottleneck = new Bottleneck(d, cfg);
    this.decoder_latent_pe = buffer(
      routed
        ? asBuffer(randomPositions(cfg.tokens, d, ROUTED_LATENT_SEED), d)
        : asBuffer(sincos1d(d, cfg.tokens, cfg.latentPeScale), d),
    );
    this.decoder_patch_query_embed = buffer(patchPe);
    this.decoder_patch_query_token_type_embed = new Param(normal([1, 1, d], 0.02));
    this.decoder = new TransformerEncoderParallel(d, cfg.decoderDepth, cfg.decoderHeads);
    this.final_layer = new OutputLayer(d, pt * p * p * cfg.inChannels);
    const pr = cfg.prior;
    this.prior_model = pr ? new Gptc(cfg.bottleneckDim, pr.size, pr.maxSeqLen, pr.dropout, pr.l2Normalized) : null;
    // the reference's initialisation runs the engine; a model built to load weights into skips it
    if (!loadingWeights()) this.initializeWeights();
  }

  /**
   * The reference's initialize_weights: xavier-uniform Linears with zero bias, the patch conv like a Linear, zero head.
   */
  private initializeWeights(): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Linear) {
        m.weight.value = xavierUniform(m.weight.shape);
        if (m.bias) m.bias.value = constant(m.bias.shape, 0);
      }
    }
    const w = this.x_embedder.proj.weight;
    w.value = E.reshape(xavierUniform([w.shape[0]!, w.value.size / w.shape[0]!]), w.shape);
    const c = this.cfg.patchEmbedCenter;
    // vtok's patch_embed_center: bias −c·Σw per output channel, so the (un-centred) input's offset does not swamp
    // the clip-specific part of every patch embedding at initialisation (config.ts).
    this.x_embedder.proj.bias!.value =
      c === null
        ? constant(this.x_embedder.proj.bias!.shape, 0)
        : E.mul(E.sum(E.reshape(w.value, [w.shape[0]!, -1]), -1), -c);
    this.final_layer.linear.weight.value = constant(this.final_layer.linear.weight.shape, 0);
    this.final_layer.linear.bias!.value = constant(this.final_layer.linear.bias!.shape, 0);
    if (this.cfg.routedInitGain !== null) this.routeHolisticPath(this.cfg.routedInitGain);
  }

  /**
   * vtok's routed init (routed-init.ts): in the encoder's first block holistic query i reads patch π(i); in the
   * decoder's first block patch query j reads latent π'(j). The readers' normalised inputs are known at init (the
   * queries themselves, the patch positions plus the type vector), the read tokens are told apart by their fixed
   * random positions.
   */
  private routeHolisticPath(gain: number): void {
    const d = this.cfg.hiddenSize,
      n = this.encoder_patch_pe.shape[1]!,
      N = this.cfg.tokens;
    const [enc, dec] = [this.encoder.blocks[0]!, this.decoder.blocks[0]!];
    // rows as each block's first LayerNorm sees them
    const normed = (blk: typeof enc, x: Tensor) => E.toArray(blk.norm1.forward(x));
    const queries = normed(enc, this.encoder_latent_query_embed.value);
    routeBlock(enc, queries, pickRows(normed(enc, this.encoder_patch_pe.value), d, N), gain);
    const patchQueries = normed(
      dec,
      E.add(this.decoder_patch_query_embed.value, this.decoder_patch_query_token_type_embed.value),
    );
    routeBlock(dec, patchQueries, pickRows(normed(dec, this.decoder_latent_pe.value), d, n), gain);
  }

  get quantizer(): StochasticVQ {
    return this.bottleneck.regularizer;
  }

  /** `alpha`: the quantizer warm-up's blend (StochasticVQ.forward). */
  encode(x: Tensor, alpha?: Tensor): LarpEncoding {
    const b = x.shape[0]!;
    const patchEmbed = this.x_embedder.forward(x);
    const queries = E.broadcastTo(E.unsqueeze(this.encoder_latent_query_embed.value, 0), [
      b,
      ...this.encoder_latent_query_embed.shape,
    ]);
    const encoderOut = this.encoder.forward(E.add(patchEmbed, this.encoder_patch_pe.value), queries);
    const projected = this.bottleneck.in_linear.forward(encoderOut);
    const q = this.quantizer.forward(projected, alpha);
    const encoded = this.bottleneck.out_linear.forward(q.regularized_z);
    return { ...q, encoded, projected_z: projected, patchEmbed, encoderOut };
  }

  /** Latents [B, N, D] → video [B, C, T, H, W] (LARP range, not clamped) and the decoder's patch outputs. */
  decode(encoded: Tensor): { video: Tensor; hidden: Tensor } {
    const b = encoded.shape[0]!;
    const pq = E.add(this.decoder_patch_query_embed.value, this.decoder_patch_query_token_type_embed.value);
    const queries = E.broadcastTo(pq, [b, pq.shape[1]!, pq.shape[2]!]);
    const hidden = this.decoder.forward(E.add(encoded, this.decoder_latent_pe.value), queries);
    return { video: this.unpatchify(this.final_layer.forward(hidden)), hidden };
  }

  /** Token ids [B, N] → video (decode_from_bottleneck). */
  decodeIndices(indices: Tensor): Tensor {
    return this.decode(this.bottleneck.out_linear.forward(this.quantizer.codebookEntry(indices))).video;
  }

  /** [B, t·h·w, pt·p·p·C] → [B, C, t·pt, h·p, w·p] ('b t h w pt p1 p2 c -> b c (t pt) (h p1) (w p2)'). */
  unpatchify(x: Tensor): Tensor {
    const [t, h, w] = this.grid;
    const pt = this.cfg.temporalPatchSize,
      p = this.cfg.patchSize,
      c = this.cfg.inChannels;
    const b = x.shape[0]!;
    const y = E.transpose(E.reshape(x, [b, t, h, w, pt, p, p, c]), [0, 7, 1, 4, 2, 5, 3, 6]);
    return E.reshape(y, [b, c, t * pt, h * p, w * p]);
  }
}
