import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { type CompiledFn, compileInference, type CompileOptions } from '../../nn/compiled.js';
import { VtokError } from '../../util/errors.js';
import {
  calibrationBatches,
  type Modality,
  type PrecisionOptions,
  type TokenGrid,
  type Tokenizer,
} from '../tokenizer.js';
import { type Magvit2Config, parseMagvit2Config, temporalStrides } from './config.js';
import { Magvit2Model } from './model.js';

/**
 * MAGVIT-v2 as a vtok Tokenizer: video N×C×T×H×W in [−1, 1] ↔ int64 ids [N, t, h, w]. The video model is the
 * causal 3-D CNN (1 + 4k frames → 1 + k latent frames with the released 4× temporal config); the image model is
 * the 2-D CNN applied frame by frame (grid [T, h, w]), sharing the id space. Encode and decode run as compiled
 * graphs with the weights baked in as constants (about 25% faster on CPU than feeding them as inputs;
 * src/nn/compiled.ts): when a parameter's tensor is replaced (training step, loadStateDict) they are recompiled on
 * the next call.
 *
 * With `setPrecision('int8')` the convolutions run as onnxruntime int8 kernels (src/engine/quantize.ts),
 * calibrated per compiled shape on explicit calibration clips or, without them, on the first input of that
 * shape. The encoder's last convolution (the latent the LFQ signs are taken of) and convolutions on fewer than
 * 16 channels (the pixel input, small code widths) stay float32.
 */
type Encoded = { latent: Tensor; quantized: Tensor; indices: Tensor };
interface Programs {
  encode: CompiledFn<[Tensor], Encoded>;
  decode: CompiledFn<[Tensor], Tensor>;
}

export class Magvit2Tokenizer implements Tokenizer {
  readonly kind = 'magvit2';
  /** The 2-D (image) config codes each frame of a clip on its own. */
  get modality(): Modality {
    return this.cfg.kind === 'image' ? 'image' : 'video';
  }
  readonly cfg: Magvit2Config;
  readonly model: Magvit2Model;
  private readonly fp32: Programs;
  private int8: Programs | null = null;
  private precisionMode: E.Precision = 'fp32';
  private calibration: Tensor | null = null;

  constructor(config: Magvit2Config | Record<string, unknown>, model?: Magvit2Model) {
    this.cfg = parseMagvit2Config(config as Record<string, unknown>);
    this.model = model ?? new Magvit2Model(this.cfg);
    this.fp32 = this.build('fp32');
  }

  /** Inference precision of encode/decode. */
  get precision(): E.Precision {
    return this.precisionMode;
  }

  /**
   * Switches encode/decode to `precision`. int8 programs are calibrated on `calibration` (clips N×C×T×H×W in
   * [−1, 1], the shape of the inputs to come but any N) when given, else on the first input of each shape.
   */
  setPrecision(precision: E.Precision, opts: PrecisionOptions = {}): void {
    if (precision !== 'fp32' && precision !== 'int8')
      throw new VtokError(`magvit2: unknown precision "${precision as string}" (fp32 or int8)`);
    const cal = opts.calibration;
    if (cal && (cal.rank !== 5 || cal.shape[1] !== this.channels))
      throw new VtokError(`magvit2: calibration clips must be N×${this.channels}×T×H×W, got [${cal.shape}]`);
    this.precisionMode = precision;
    if ((cal ?? null) !== this.calibration) this.dropInt8();
    this.calibration = cal ?? null;
  }

  release(): void {
    this.fp32.encode.dispose();
    this.fp32.decode.dispose();
    this.dropInt8();
  }

  private dropInt8(): void {
    this.int8?.encode.dispose();
    this.int8?.decode.dispose();
    this.int8 = null;
  }

  /** The compiled encode/decode for the current precision (each recompiles itself when the weights change). */
  private programs(precision: E.Precision = this.precisionMode): Programs {
    if (precision === 'fp32') return this.fp32;
    this.int8 ??= this.build('int8');
    return this.int8;
  }

  private build(precision: E.Precision): Programs {
    const int8 = precision === 'int8';
    const encodeOpts: CompileOptions<[Tensor]> = { name: `magvit2_encode${int8 ? '_int8' : ''}`, weights: 'baked' };
    const decodeOpts: CompileOptions<[Tensor]> = { name: `magvit2_decode${int8 ? '_int8' : ''}`, weights: 'baked' };
    if (int8) {
      const calibration = this.calibration;
      // The LFQ bits are the signs of the encoder's last convolution: that one stays float32.
      Object.assign(encodeOpts, {
        precision,
        quantize: { keepFloat: (c: E.QuantCandidate) => c.op === 'Conv' && c.index === c.count - 1 },
        calibrate: (x: Tensor) =>
          calibration ? calibrationBatches(calibration, x.shape[0]!, x.shape.slice(1), 'magvit2 encode') : [[x]],
      });
      Object.assign(decodeOpts, {
        precision,
        calibrate: (ids: Tensor) => {
          if (!calibration) return [[ids]];
          // Ids of the calibration clips, from the float32 encoder, batched like the ids being decoded.
          return calibrationBatches(calibration, ids.shape[0]!, calibration.shape.slice(1), 'magvit2 decode').map(
            ([clips]) => {
              const cid = this.encodeWith(this.programs('fp32'), clips!);
              if (cid.shape.join() !== ids.shape.join())
                throw new VtokError(
                  `magvit2 decode: calibration clips give ids [${cid.shape}], decoding [${ids.shape}]`,
                );
              return [cid];
            },
          );
        },
      });
    }
    // Traced in eval mode: no LFQ losses.
    const encode = compileInference(
      this.model,
      (x: Tensor): Encoded => {
        const { latent, quantized, indices } = this.model.encode(this.toModel(x));
        return { latent, quantized, indices };
      },
      encodeOpts,
    );
    const decode = compileInference(
      this.model,
      (ids: Tensor) => this.fromModel(this.model.decodeIndices(this.idsToModel(ids)), ids.shape[0]!),
      decodeOpts,
    );
    return { encode, decode };
  }

  private encodeWith(p: Programs, video: Tensor): Tensor {
    return this.clipIds(p.encode(video).indices, video);
  }

  /** The encoder's ids as [N, t, h, w]: the image model's [N·T, h, w] regrouped per clip (on the host, no run). */
  private clipIds(ids: Tensor, video: Tensor): Tensor {
    return this.cfg.kind === 'video'
      ? ids
      : E.concrete(ids.data, [video.shape[0]!, video.shape[2]!, ...ids.shape.slice(1)], ids.dtype);
  }

  get config(): Record<string, unknown> {
    return this.cfg as unknown as Record<string, unknown>;
  }
  get vocabBits(): number {
    return this.cfg.embed_dim;
  }
  get vocabSize(): number {
    return this.cfg.n_embed;
  }
  get channels(): number {
    return this.cfg.ddconfig.in_channels;
  }
  /** Temporal compression of the video model (2 per temporally strided level). */
  get temporalFactor(): number {
    return temporalStrides(this.cfg).reduce((a, s) => a * s, 1);
  }
  get clipFrames(): number {
    return this.cfg.kind === 'video' ? 1 + 4 * this.temporalFactor : 1;
  }

  grid(clip: readonly number[]): TokenGrid {
    if (clip.length !== 4) throw new VtokError(`magvit2: a clip is C×T×H×W, got [${clip}]`);
    const [, frames, height, width] = clip as [number, number, number, number];
    if (this.cfg.kind === 'video') return { shape: this.model.latentShape(frames, height, width) };
    return { shape: [frames, ...this.model.latentShape(1, height, width)] };
  }

  /** Video → what the model takes: as is (video), or frames folded into the batch (image). */
  private toModel(x: Tensor): Tensor {
    if (x.rank !== 5) throw new VtokError(`magvit2 encode: expected N×C×T×H×W video, got [${x.shape}]`);
    if (x.shape[1] !== this.cfg.ddconfig.in_channels)
      throw new VtokError(`magvit2 encode: ${x.shape[1]} channels, the model takes ${this.cfg.ddconfig.in_channels}`);
    if (this.cfg.kind === 'video') return x;
    const [n, c, t, h, w] = x.shape as [number, number, number, number, number];
    return E.reshape(E.transpose(x, [0, 2, 1, 3, 4]), [n * t, c, h, w]);
  }

  /** Model output → N×C×T×H×W. */
  private fromModel(y: Tensor, n: number): Tensor {
    if (this.cfg.kind === 'video') return y;
    const [nt, c, h, w] = y.shape as [number, number, number, number];
    return E.transpose(E.reshape(y, [n, nt / n, c, h, w]), [0, 2, 1, 3, 4]);
  }

  /** ids [N, t, h, w] → what the model's quantizer decodes ([N·t, h, w] for the image model). */
  private idsToModel(ids: Tensor): Tensor {
    if (ids.rank !== 4) throw new VtokError(`magvit2 decode: expected ids [N, t, h, w], got [${ids.shape}]`);
    return this.cfg.kind === 'video' ? ids : E.reshape(ids, [-1, ids.shape[2]!, ids.shape[3]!]);
  }

  /** Encoder latent, ±1 codes and ids of a video (compiled). Image model: latents are [N·T, D, h, w]. */
  encodeFull(video: Tensor): Encoded {
    return this.programs().encode(video);
  }

  encode(video: Tensor): Tensor {
    return this.encodeWith(this.programs(), video);
  }

  decode(ids: Tensor): Tensor {
    if (ids.dtype !== 'int64') throw new VtokError(`magvit2 decode: ids must be int64, got ${ids.dtype}`);
    return this.programs().decode(ids);
  }

  async encodeAsync(video: Tensor): Promise<Tensor> {
    return this.clipIds((await this.programs().encode.runAsync(video)).indices, video);
  }

  async decodeAsync(ids: Tensor): Promise<Tensor> {
    if (ids.dtype !== 'int64') throw new VtokError(`magvit2 decode: ids must be int64, got ${ids.dtype}`);
    return this.programs().decode.runAsync(ids);
  }
}
