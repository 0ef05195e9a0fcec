import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { bindParams, type Param } from '../../nn/index.js';
import { VtokError } from '../../util/errors.js';
import type { TokenGrid, Tokenizer } from '../tokenizer.js';
import { type GptcSize, parseLarpConfig } from './config.js';
import { LarpModel } from './model.js';

/**
 * LARP behind vtok's Tokenizer interface: video in [-1, 1] ↔ N holistic token ids per clip. Encoding is
 * deterministic (eval mode, argmax SVQ), as the reference uses it for second-stage training. encode and decode
 * are compiled once per input shape; the weights are inputs of the compiled graphs, so loading or training new
 * weights needs no recompilation.
 */
export class LarpTokenizer implements Tokenizer {
  readonly kind = 'larp' as const;
  private readonly params: Param[];
  private readonly encodeFn: E.JitFunction<(w: Tensor[], x: Tensor) => Tensor>;
  private readonly decodeFn: E.JitFunction<(w: Tensor[], ids: Tensor) => Tensor>;

  constructor(readonly model: LarpModel) {
    this.params = model.namedParams().map(([, p]) => p);
    this.encodeFn = E.jit((w: Tensor[], x: Tensor) => this.inference(w, () => model.encode(E.mul(E.add(x, 1), 0.5)).indices), { name: 'larp_encode' });
    this.decodeFn = E.jit((w: Tensor[], ids: Tensor) => this.inference(w, () => E.sub(E.mul(model.decodeIndices(ids), 2), 1)), { name: 'larp_decode' });
  }

  /** Builds a (randomly initialised) tokenizer from a reference model.args JSON. */
  static fromConfig(raw: Record<string, unknown>, gptcSizes?: Record<string, GptcSize>): LarpTokenizer {
    return new LarpTokenizer(new LarpModel(parseLarpConfig(raw, gptcSizes)));
  }

  get config(): Record<string, unknown> { return this.model.cfg.raw; }
  get vocabSize(): number { return this.model.cfg.codebookSize; }
  get vocabBits(): number { return Math.ceil(Math.log2(this.vocabSize)); }
  get clipFrames(): number { return this.model.cfg.frameNum; }
  get channels(): number { return this.model.cfg.inChannels; }
  get tokens(): number { return this.model.cfg.tokens; }

  grid(frames: number, height: number, width: number): TokenGrid {
    const c = this.model.cfg;
    if (frames !== c.frameNum || height !== c.inputSize || width !== c.inputSize) {
      throw new VtokError(`LARP takes ${c.frameNum}×${c.inputSize}×${c.inputSize} clips (fixed positions), got ${frames}×${height}×${width}`);
    }
    return { shape: [c.tokens] };
  }

  encode(video: Tensor): Tensor {
    const [, ch, t, h, w] = video.shape;
    if (video.rank !== 5 || ch !== this.model.cfg.inChannels) throw new VtokError(`LARP encode: expected N×${this.model.cfg.inChannels}×T×H×W, got [${video.shape}]`);
    this.grid(t, h, w);
    return this.encodeFn(this.weights(), video);
  }

  decode(ids: Tensor): Tensor {
    if (ids.rank !== 2 || ids.shape[1] !== this.tokens) throw new VtokError(`LARP decode: expected ids [N, ${this.tokens}], got [${ids.shape}]`);
    return this.decodeFn(this.weights(), E.cast(ids, 'int64'));
  }

  private weights(): Tensor[] {
    return this.params.map((p) => p.value);
  }

  /** Traces fn in eval mode with deterministic SVQ and the weights bound to the graph inputs, restoring the mode. */
  private inference(w: Tensor[], fn: () => Tensor): Tensor {
    const q = this.model.quantizer;
    const [training, det] = [this.model.training, q.deterministic];
    this.model.eval();
    q.deterministic = true;
    try {
      return bindParams(this.params, w, fn);
    } finally {
      this.model.train(training);
      q.deterministic = det;
    }
  }
}
