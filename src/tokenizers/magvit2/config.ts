import { VtokError } from '../../util/errors.js';

/**
 * Open-MAGVIT2's model config, with the reference's field names: the `ddconfig` of its Encoder/Decoder plus the
 * LFQ size and loss weights of `VQModel`. Golden files store it as JSON in `__metadata__.config`.
 */
export interface DDConfig {
  double_z: boolean;
  z_channels: number;
  resolution: number;
  in_channels: number;
  out_ch: number;
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
}

export interface Magvit2Config {
  ddconfig: DDConfig;
  /** Vocabulary size 2^embed_dim. */
  n_embed: number;
  /** LFQ bits D (= ddconfig.z_channels). */
  embed_dim: number;
  sample_minimization_weight: number;
  batch_maximization_weight: number;
  /** Reference class paths; the encoder's file decides 3-D video (improved_video_model.py) or 2-D image. */
  encoder_class?: string;
  decoder_class?: string;
  quantizer_class?: string;
  /** vtok: 'video' = causal 3-D CNN, 'image' = 2-D CNN (derived from encoder_class when absent). */
  kind: 'video' | 'image';
  /**
   * vtok, training only: over its first this-many steps the decoder's input goes linearly from the encoder's
   * continuous latent to its ±1 code (and the LFQ losses from 0 to their weights); absent or 0: quantized from the
   * first step, as the reference.
   */
  quantizer_warmup?: number;
  /**
   * vtok: GroupNorm groups (the reference's 32 when absent). At the reference's width (128) a group holds 4
   * channels; a narrower model can keep 4 a group with fewer groups rather than normalising each channel alone.
   */
  norm_groups?: number;
  /**
   * vtok: false drops the GroupNorm before the encoder's and the decoder's last convolution (present when absent,
   * as the reference), so that the last convolutions see the features' levels, not their statistics over the clip.
   */
  out_norm?: boolean;
  /**
   * vtok, video only: true computes every normalisation's statistics per frame (the adaptive norm's from each latent
   * frame), so the tokenizer is causal end to end: the tokens of a clip's first 1 + 4k frames do not depend on the
   * frames after them, and a clip decodes the same at any length. False or absent: statistics over the whole clip,
   * as the reference.
   */
  causal_norm?: boolean;
  /**
   * vtok: the LFQ's bit order, 'lsb' (channel c is bit c: the current Open-MAGVIT2 code and the paper; when absent)
   * or 'msb' (channel c is bit D−1−c: Open-MAGVIT2's June-2024 code, before its fix). The weights are the same either
   * way; the ids differ, so a checkpoint must be used with the order it was trained with.
   */
  lfq_order?: 'lsb' | 'msb';
}

const num = (o: Record<string, unknown>, k: string, where: string): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new VtokError(`magvit2 config: ${where}${k} must be a number, got ${JSON.stringify(v)}`);
  return v;
};

/** Validates a raw (JSON) config and fills defaults; errors name the field. */
export function parseMagvit2Config(raw: Record<string, unknown>): Magvit2Config {
  const dd = raw.ddconfig as Record<string, unknown> | undefined;
  if (!dd || typeof dd !== 'object') throw new VtokError('magvit2 config: missing "ddconfig"');
  const chMult = dd.ch_mult;
  if (!Array.isArray(chMult) || chMult.length === 0 || chMult.some((m) => typeof m !== 'number' || m < 1)) {
    throw new VtokError(
      `magvit2 config: ddconfig.ch_mult must be a non-empty list of positive numbers, got ${JSON.stringify(chMult)}`,
    );
  }
  if (dd.double_z) throw new VtokError('magvit2 config: double_z is not supported (LFQ takes z_channels latents)');
  const ddconfig: DDConfig = {
    double_z: false,
    z_channels: num(dd, 'z_channels', 'ddconfig.'),
    resolution: typeof dd.resolution === 'number' ? dd.resolution : 0,
    in_channels: num(dd, 'in_channels', 'ddconfig.'),
    out_ch: num(dd, 'out_ch', 'ddconfig.'),
    ch: num(dd, 'ch', 'ddconfig.'),
    ch_mult: chMult as number[],
    num_res_blocks: num(dd, 'num_res_blocks', 'ddconfig.'),
  };
  const groups = raw.norm_groups === undefined ? 32 : raw.norm_groups;
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1)
    throw new VtokError(`magvit2 config: norm_groups must be a positive whole number, got ${JSON.stringify(groups)}`);
  for (const m of [1, ...ddconfig.ch_mult]) {
    if ((ddconfig.ch * m) % groups !== 0)
      throw new VtokError(
        `magvit2 config: width ch·mult = ${ddconfig.ch * m} is not divisible by GroupNorm's ${groups} groups`,
      );
  }
  const embedDim = typeof raw.embed_dim === 'number' ? raw.embed_dim : ddconfig.z_channels;
  const nEmbed = typeof raw.n_embed === 'number' ? raw.n_embed : 2 ** embedDim;
  if (embedDim !== ddconfig.z_channels)
    throw new VtokError(`magvit2 config: embed_dim ${embedDim} must equal ddconfig.z_channels ${ddconfig.z_channels}`);
  if (nEmbed !== 2 ** embedDim)
    throw new VtokError(`magvit2 config: n_embed ${nEmbed} must be 2^embed_dim = ${2 ** embedDim}`);
  const encoderClass = typeof raw.encoder_class === 'string' ? raw.encoder_class : undefined;
  let kind = raw.kind as Magvit2Config['kind'] | undefined;
  if (kind === undefined) kind = encoderClass && !encoderClass.includes('video') ? 'image' : 'video';
  if (kind !== 'video' && kind !== 'image')
    throw new VtokError(`magvit2 config: kind must be "video" or "image", got ${JSON.stringify(kind)}`);
  return {
    ddconfig,
    n_embed: nEmbed,
    embed_dim: embedDim,
    sample_minimization_weight: typeof raw.sample_minimization_weight === 'number' ? raw.sample_minimization_weight : 1,
    batch_maximization_weight: typeof raw.batch_maximization_weight === 'number' ? raw.batch_maximization_weight : 1,
    encoder_class: encoderClass,
    decoder_class: typeof raw.decoder_class === 'string' ? raw.decoder_class : undefined,
    quantizer_class: typeof raw.quantizer_class === 'string' ? raw.quantizer_class : undefined,
    kind,
    ...(raw.quantizer_warmup !== undefined ? { quantizer_warmup: warmup(raw.quantizer_warmup) } : {}),
    ...(raw.norm_groups !== undefined ? { norm_groups: groups } : {}),
    ...(raw.out_norm !== undefined ? { out_norm: flag(raw.out_norm, 'out_norm') } : {}),
    ...(raw.causal_norm !== undefined ? { causal_norm: causalNorm(raw.causal_norm, kind) } : {}),
    ...(raw.lfq_order !== undefined ? { lfq_order: lfqOrder(raw.lfq_order) } : {}),
  };
}

function flag(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean')
    throw new VtokError(`magvit2 config: ${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function lfqOrder(v: unknown): 'lsb' | 'msb' {
  if (v !== 'lsb' && v !== 'msb')
    throw new VtokError(`magvit2 config: lfq_order must be "lsb" or "msb", got ${JSON.stringify(v)}`);
  return v;
}

function causalNorm(v: unknown, kind: Magvit2Config['kind']): boolean {
  const on = flag(v, 'causal_norm');
  if (on && kind !== 'video')
    throw new VtokError('magvit2 config: causal_norm applies to the video tokenizer (an image model has one frame)');
  return on;
}

function warmup(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new VtokError(
      `magvit2 config: quantizer_warmup must be a whole number of steps ≥ 0, got ${JSON.stringify(v)}`,
    );
  return v;
}

/** Temporal stride of each encoder downsampling (levels 0..L−2): 1 where ch_mult[i] == 1, else 2 (video only). */
export function temporalStrides(cfg: Magvit2Config): number[] {
  return cfg.ddconfig.ch_mult.slice(0, -1).map((m) => (cfg.kind === 'video' && m !== 1 ? 2 : 1));
}
