import { VtokError } from '../../util/errors.js';

/**
 * LARP's model config, typed. `parseLarpConfig` reads the reference's `model.args` JSON (as stored in the golden
 * files' __metadata__.config and in released configs) and rejects the options this port does not implement,
 * rather than silently building a different model. The vtok-only keys (patch_embed_center, patch_pe_scale_factor,
 * routed_init_gain, quantizer_warmup) exist for the CPU-scale presets; reference configs set none of them and build
 * exactly the reference model. docs/larp-small-scale.md says why each is there.
 */
/** A GPTC size as the reference's JSON gives it (read only here, at the config boundary). */
export interface GptcSize {
  n_layer: number;
  n_head: number;
  n_embd: number;
}

/** A GPTC size in vtok's vocabulary. */
export interface PriorSize {
  dim: number;
  layers: number;
  heads: number;
}

/** The reference's registered GPTC sizes (models/gptc.py). */
export const GPTC_SIZES: Record<string, GptcSize> = {
  'gptc-L': { n_layer: 24, n_head: 16, n_embd: 1024 },
  'gptc-B': { n_layer: 12, n_head: 12, n_embd: 768 },
  'gptc-M': { n_layer: 12, n_head: 8, n_embd: 512 },
  'gptc-S': { n_layer: 12, n_head: 6, n_embd: 384 },
  'gptc-XS': { n_layer: 6, n_head: 6, n_embd: 384 },
  'gptc-XXS': { n_layer: 6, n_head: 4, n_embd: 256 },
};

export interface PriorConfig {
  name: string;
  size: PriorSize;
  maxSeqLen: number;
  l2Normalized: boolean;
  dropout: number;
  latentCeTemperature: number;
  nRounds: number;
  useMixSs: boolean;
  mixSsMaxRatio: number;
  mixSsPeakStepsRatio: number;
  avgLossOverRounds: boolean;
  noGradBeforeLastRound: boolean;
}

export interface LarpConfig {
  inChannels: number;
  inputSize: number;
  frameNum: number;
  temporalPatchSize: number;
  patchSize: number;
  hiddenSize: number;
  encoderHeads: number;
  encoderDepth: number;
  decoderHeads: number;
  decoderDepth: number;
  /** Number of holistic queries = tokens per clip. */
  tokens: number;
  queryInitStd: number;
  latentPeScale: number;
  /**
   * Base of the fixed 3-D sin-cos embeddings of the patches (encoder patch PE and decoder patch queries). The
   * reference hard-codes MAE's 10000; `patch_pe_scale_factor` is vtok's extension (absent = 10000, so reference
   * configs and the golden files are unaffected), the patch-side twin of the reference's latent_pe_scale_factor.
   * With 10000 on a small grid (tiny preset: 2×4×4 patches, width 64) neighbouring decoder patch queries have
   * cosine similarity 0.993, i.e. the decoder's queries barely know where they are.
   */
  patchPeScale: number;
  bottleneckDim: number;
  codebookSize: number;
  commitmentLossWeight: number;
  codebookLossWeight: number;
  stochasticTemperature: number;
  /**
   * The quantizer's entropy term (entropy_loss_weight, entropy_loss_temperature). The released config has weight 0;
   * the reference's stochastic quantizer would fail on a non-zero weight (an undefined variable), so with SVQ its
   * intended form is unknown: vtok's is `entropyPenalty` (svq.ts) over softmax(cos / entropy_loss_temperature).
   */
  entropyLossWeight: number;
  entropyTemperature: number;
  /**
   * vtok's `patch_embed_center` (absent = the reference's zero bias): the patch embedding's bias starts at −W·c, so
   * a clip of constant value c (0.5, the middle of LARP's [0, 1] range) embeds to 0 at initialisation.
   */
  patchEmbedCenter: number | null;
  /**
   * vtok's `routed_init_gain` (absent = the reference's initialisation): fixed random positions instead of sin-cos,
   * and the first encoder and decoder blocks start routed, holistic query i reading patch i and decoder patch query j
   * reading latent j, with this attention gain (routed-init.ts).
   */
  routedInitGain: number | null;
  /**
   * vtok's `quantizer_warmup` (absent = 0, the reference): for this many training steps the decoder's input ramps
   * linearly from the continuous normalised latent to the straight-through code, and loss_q with it.
   */
  quantizerWarmup: number;
  prior: PriorConfig | null;
  /** The JSON this was parsed from (kept for token-file hashing and checkpoints). */
  raw: Record<string, unknown>;
}

/** Flags whose non-default value would need code this port does not have. */
const FIXED: Record<string, unknown> = {
  transformer_name: 'transformer_encoder_parallel',
  encoder_name: 'none',
  decoder_name: 'none',
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

type Json = Record<string, unknown>;

/** The section `o[key]` of a parsed config (`fallback` when absent); its fields are checked where they are read. */
function section(o: Json, key: string, fallback: Json = {}): Json {
  return (o[key] ?? fallback) as Json;
}

function num(o: Json, key: string, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new VtokError(`LARP config: "${key}" must be a number, got ${JSON.stringify(o[key])}`);
  return v;
}

/**
 * `gptcSizes` adds sizes beyond the registered ones (the golden files name theirs in __metadata__.gptc_size); a
 * `gptc_sizes` object inside the config itself (vtok's extension, so a saved config rebuilds alone) counts too.
 */
export function parseLarpConfig(raw: Json, gptcSizes: Record<string, GptcSize> = {}): LarpConfig {
  for (const [k, v] of Object.entries(FIXED)) {
    if (k in raw && raw[k] !== v)
      throw new VtokError(
        `LARP config: ${k} = ${JSON.stringify(raw[k])} is not implemented (only ${JSON.stringify(v)})`,
      );
  }
  if (raw.temporal_patch_size !== raw.decoder_temporal_patch_size || raw.patch_size !== raw.decoder_patch_size) {
    throw new VtokError(
      'LARP config: decoder patch sizes must equal the encoder ' +
        'ones (the reference unpatchifies with the encoder sizes)',
    );
  }
  if (raw.encoder_hidden_size !== raw.decoder_hidden_size)
    throw new VtokError('LARP config: encoder and decoder widths must be equal');
  const b = section(section(raw, 'bottleneck'), 'args');
  if ((b.norm ?? 'none') !== 'none')
    throw new VtokError(`LARP config: bottleneck norm ${JSON.stringify(b.norm)} is not implemented`);
  const reg = section(b, 'regularizer');
  if (reg.name !== 'vq')
    throw new VtokError(`LARP config: regularizer ${JSON.stringify(reg.name)} is not implemented (only "vq")`);
  const r = section(reg, 'args');
  if (
    r.l2_normalized === false ||
    r.stochastic === false ||
    num(r, 'stochastic_temperature', 0.03) <= 0 ||
    num(r, 'entropy_loss_weight', 0) < 0
  ) {
    throw new VtokError(
      'LARP config: only the released quantizer (l2-normalised, stochastic, τ > 0, entropy weight ≥ 0) is implemented',
    );
  }
  const cfg: LarpConfig = {
    inChannels: num(raw, 'in_channels', 3),
    inputSize: num(raw, 'input_size'),
    frameNum: num(raw, 'frame_num'),
    temporalPatchSize: num(raw, 'temporal_patch_size'),
    patchSize: num(raw, 'patch_size'),
    hiddenSize: num(raw, 'encoder_hidden_size'),
    encoderHeads: num(raw, 'encoder_num_heads'),
    encoderDepth: num(raw, 'encoder_depth'),
    decoderHeads: num(raw, 'decoder_num_heads'),
    decoderDepth: num(raw, 'decoder_depth'),
    tokens: num(raw, 'bottleneck_token_num'),
    queryInitStd: num(raw, 'query_init_std', 0.02),
    latentPeScale: num(raw, 'latent_pe_scale_factor', 10000),
    patchPeScale: num(raw, 'patch_pe_scale_factor', 10000),
    bottleneckDim: num(b, 'bottleneck_dim'),
    codebookSize: num(r, 'codebook_size'),
    commitmentLossWeight: num(r, 'commitment_loss_weight', 0.25),
    codebookLossWeight: num(r, 'codebook_loss_weight', 1.0),
    stochasticTemperature: num(r, 'stochastic_temperature', 0.03),
    entropyLossWeight: num(r, 'entropy_loss_weight', 0),
    entropyTemperature: num(r, 'entropy_loss_temperature', 0.01),
    patchEmbedCenter: raw.patch_embed_center === undefined ? null : num(raw, 'patch_embed_center'),
    routedInitGain: raw.routed_init_gain === undefined ? null : num(raw, 'routed_init_gain'),
    quantizerWarmup: num(raw, 'quantizer_warmup', 0),
    prior: null,
    raw,
  };
  if (cfg.routedInitGain !== null && !(cfg.routedInitGain > 0))
    throw new VtokError(`LARP config: routed_init_gain must be > 0, got ${cfg.routedInitGain}`);
  if (!Number.isInteger(cfg.quantizerWarmup) || cfg.quantizerWarmup < 0)
    throw new VtokError(
      `LARP config: quantizer_warmup must be a whole number of steps ≥ 0, got ${cfg.quantizerWarmup}`,
    );
  if (cfg.frameNum % cfg.temporalPatchSize || cfg.inputSize % cfg.patchSize) {
    throw new VtokError(
      `LARP config: ${cfg.frameNum}×${cfg.inputSize}² is not divisible ` +
        `by the patch ${cfg.temporalPatchSize}×${cfg.patchSize}²`,
    );
  }
  const p = section(raw, 'prior_model', { name: 'none' });
  if (p.name && p.name !== 'none') {
    // sizes from the config itself are unchecked JSON: num() checks the fields read
    const sizes = { ...GPTC_SIZES, ...section(raw, 'gptc_sizes'), ...gptcSizes } as Record<string, Json>;
    const size = sizes[p.name as string];
    if (!size)
      throw new VtokError(`LARP config: unknown prior model "${p.name}" (known: ${Object.keys(sizes).join(', ')})`);
    const a = section(p, 'args');
    cfg.prior = {
      name: p.name as string,
      size: { dim: num(size, 'n_embd'), layers: num(size, 'n_layer'), heads: num(size, 'n_head') },
      maxSeqLen: num(a, 'max_seq_len', cfg.tokens),
      l2Normalized: (a.l2_normalized ?? true) as boolean,
      dropout: p.no_dropout ? 0 : 0.1,
      latentCeTemperature: num(p, 'latent_ce_temperature', 1.0),
      nRounds: num(p, 'n_rounds', 1),
      useMixSs: (p.use_mix_ss ?? false) as boolean,
      mixSsMaxRatio: num(p, 'mix_ss_max_ratio', 0.5),
      mixSsPeakStepsRatio: num(p, 'mix_ss_peak_steps_ratio', 0.3),
      avgLossOverRounds: (p.avg_loss_over_rounds ?? true) as boolean,
      noGradBeforeLastRound: (p.no_grad_before_last_round ?? false) as boolean,
    };
    if (cfg.prior.maxSeqLen < cfg.tokens)
      throw new VtokError(`LARP config: prior max_seq_len ${cfg.prior.maxSeqLen} < ${cfg.tokens} tokens`);
  }
  return cfg;
}
