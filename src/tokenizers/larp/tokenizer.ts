import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { type CompiledFn, compileInference, type CompileOptions } from '../../nn/compiled.js';
import { VtokError } from '../../util/errors.js';
import { calibrationBatches, type PrecisionOptions, type TokenGrid, type Tokenizer } from '../tokenizer.js';
import { type GptcSize, parseLarpConfig } from './config.js';
import { LarpModel } from './model.js';

/**
 * LARP behind vtok's Tokenizer interface: video in [-1, 1] ↔ N holistic token ids per clip. Encoding is
 * deterministic (eval mode, argmax SVQ), as the reference uses it for second-stage training. encode and decode
 * are compiled once per input shape (src/nn/compiled.ts); the weights are inputs of the compiled graphs, so
 * loading or training new weights needs no recompilation.
 *
 * With `setPrecision('int8')` encode and decode run separate programs with the weights baked in (recompiled when
 * a weight tensor is replaced), their Linear layers as int8 matmuls (activation ranges calibrated on explicit
 * calibration clips, or on the first input of each shape) and convolutions on ≥ 16 input channels as int8
 * convolutions. The bottleneck projection whose output the codebook argmax is taken of stays float32, as do
 * attention scores, normalisations and the codebook search itself.
 */
export class LarpTokenizer implements Tokenizer {
  readonly kind = 'larp';
  readonly modality = 'video';
  private readonly encodeFn: CompiledFn<[Tensor], Tensor>;
  private readonly decodeFn: CompiledFn<[Tensor], Tensor>;
  private int8: { encode: CompiledFn<[Tensor], Tensor>; decode: CompiledFn<[Tensor], Tensor> } | null = null;
  private precisionMode: E.Precision = 'fp32';
  private calibration: Tensor | null = null;

  constructor(readonly model: LarpModel) {
    this.encodeFn = this.compile('larp_encode', (x) => model.encode(E.mul(E.add(x, 1), 0.5)).indices, {
      weights: 'fed',
    });
    this.decodeFn = this.compile('larp_decode', (ids) => E.sub(E.mul(model.decodeIndices(ids), 2), 1), {
      weights: 'fed',
    });
  }

  /** Builds a (randomly initialised) tokenizer from a reference model.args JSON. */
  static fromConfig(raw: Record<string, unknown>, gptcSizes?: Record<string, GptcSize>): LarpTokenizer {
    return new LarpTokenizer(new LarpModel(parseLarpConfig(raw, gptcSizes)));
  }

  get config(): Record<string, unknown> {
    return this.model.cfg.raw;
  }
  get vocabSize(): number {
    return this.model.cfg.codebookSize;
  }
  get vocabBits(): number {
    return Math.ceil(Math.log2(this.vocabSize));
  }
  get clipFrames(): number {
    return this.model.cfg.frameNum;
  }
  get channels(): number {
    return this.model.cfg.inChannels;
  }
  get tokens(): number {
    return this.model.cfg.tokens;
  }

  grid(clip: readonly number[]): TokenGrid {
    if (clip.length !== 4) throw new VtokError(`LARP: a clip is C×T×H×W, got [${clip}]`);
    const [, frames, height, width] = clip;
    const c = this.model.cfg;
    if (frames !== c.frameNum || height !== c.inputSize || width !== c.inputSize) {
      throw new VtokError(
        `LARP takes ${c.frameNum}×${c.inputSize}×${c.inputSize} clips ` +
          `(fixed positions), got ${frames}×${height}×${width}`,
      );
    }
    return { shape: [c.tokens] };
  }

  encode(video: Tensor): Tensor {
    return this.encodeProgram(video)(video);
  }

  decode(ids: Tensor): Tensor {
    return this.decodeProgram(ids)(E.cast(ids, 'int64'));
  }

  encodeAsync(video: Tensor): Promise<Tensor> {
    return this.encodeProgram(video).runAsync(video);
  }

  decodeAsync(ids: Tensor): Promise<Tensor> {
    return this.decodeProgram(ids).runAsync(hostInt64(ids));
  }

  /** The encode program for the current precision, after checking the clips' shape. */
  private encodeProgram(video: Tensor): CompiledFn<[Tensor], Tensor> {
    const [, ch, t, h, w] = video.shape as [number, number, number, number, number];
    if (video.rank !== 5 || ch !== this.model.cfg.inChannels)
      throw new VtokError(`LARP encode: expected N×${this.model.cfg.inChannels}×T×H×W, got [${video.shape}]`);
    this.grid([ch, t, h, w]);
    return this.precisionMode === 'int8' ? this.int8Programs().encode : this.encodeFn;
  }

  /** The decode program for the current precision, after checking the ids' shape. */
  private decodeProgram(ids: Tensor): CompiledFn<[Tensor], Tensor> {
    if (ids.rank !== 2 || ids.shape[1] !== this.tokens)
      throw new VtokError(`LARP decode: expected ids [N, ${this.tokens}], got [${ids.shape}]`);
    return this.precisionMode === 'int8' ? this.int8Programs().decode : this.decodeFn;
  }

  /** Inference precision of encode/decode. */
  get precision(): E.Precision {
    return this.precisionMode;
  }

  release(): void {
    this.encodeFn.dispose();
    this.decodeFn.dispose();
    this.dropInt8();
  }

  private dropInt8(): void {
    this.int8?.encode.dispose();
    this.int8?.decode.dispose();
    this.int8 = null;
  }

  /**
   * Switches encode/decode to `precision`. int8 programs are calibrated on `calibration` (clips N×C×T×H×W in
   * [−1, 1], any N) when given, else on the first input of each shape.
   */
  setPrecision(precision: E.Precision, opts: PrecisionOptions = {}): void {
    if (precision !== 'fp32' && precision !== 'int8')
      throw new VtokError(`LARP: unknown precision "${precision as string}" (fp32 or int8)`);
    const cal = opts.calibration;
    const c = this.model.cfg;
    const clip = [c.inChannels, c.frameNum, c.inputSize, c.inputSize];
    if (cal && (cal.rank !== 5 || cal.shape.slice(1).some((d, i) => d !== clip[i])))
      throw new VtokError(`LARP: calibration clips must be N×${clip.join('×')}, got [${cal.shape}]`);
    this.precisionMode = precision;
    if ((cal ?? null) !== this.calibration) this.dropInt8();
    this.calibration = cal ?? null;
  }

  /** The int8 encode/decode (weights baked in, so each recompiles itself when a weight tensor changes). */
  private int8Programs() {
    if (this.int8) return this.int8;
    const cal = this.calibration;
    const model = this.model;
    const bottleneck = model.cfg.bottleneckDim;
    // The projection to the codebook space decides the code: it stays float32.
    const quantize: E.QuantizeOptions = {
      matmul: 'static',
      keepFloat: (c) => c.op === 'MatMul' && c.weightShape[1] === bottleneck,
    };
    const encode = this.compile('larp_encode_int8', (x) => model.encode(E.mul(E.add(x, 1), 0.5)).indices, {
      weights: 'baked',
      precision: 'int8',
      quantize,
      calibrate: (x: Tensor) => (cal ? calibrationBatches(cal, x.shape[0]!, x.shape.slice(1), 'LARP encode') : [[x]]),
    });
    const decode = this.compile('larp_decode_int8', (ids) => E.sub(E.mul(model.decodeIndices(ids), 2), 1), {
      weights: 'baked',
      precision: 'int8',
      quantize,
      // Calibration ids come from the float32 encoder.
      calibrate: (ids: Tensor) =>
        cal
          ? calibrationBatches(cal, ids.shape[0]!, cal.shape.slice(1), 'LARP decode').map(([clips]) => [
              this.encodeFn(clips!),
            ])
          : [[ids]],
    });
    this.int8 = { encode, decode };
    return this.int8;
  }

  /** Compiled in eval mode with deterministic SVQ (argmax codes), the quantizer's mode restored afterwards. */
  private compile(
    name: string,
    fn: (x: Tensor) => Tensor,
    o: Omit<CompileOptions<[Tensor]>, 'name' | 'inferenceState'>,
  ): CompiledFn<[Tensor], Tensor> {
    const q = this.model.quantizer;
    return compileInference(this.model, fn, {
      name,
      ...o,
      inferenceState: () => {
        const det = q.deterministic;
        q.deterministic = true;
        return () => (q.deterministic = det);
      },
    });
  }
}

/** Concrete ids as int64, converted on the host (E.cast would run an eager op, which needs a synchronous run). */
function hostInt64(ids: Tensor): Tensor {
  if (ids.dtype === 'int64') return ids;
  if (!ids.isConcrete) throw new VtokError('LARP decode: ids must be concrete');
  return E.concrete(
    BigInt64Array.from(ids.data as ArrayLike<number>, (v) => BigInt(Math.trunc(v))),
    ids.shape,
    'int64',
  );
}
