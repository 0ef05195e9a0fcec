import * as E from '../engine/core.js';
import type { Tensor, Tree } from '../engine/core.js';
import { clipGradNorm, emaUpdate, type Optimizer, type Schedule } from './optim.js';
import { bindParams, type Module, type Param } from './module.js';
import { VtokError } from '../util/errors.js';
import { collectGarbage } from '../util/gc.js';
import { type Chunk, concatFlat, flatOf, packChunks, viewsOf } from './chunks.js';

/**
 * One compiled training step: forward, backward, gradient clipping, optimizer update and EMA of weights, traced
 * into a single ONNX graph and run as one onnxruntime call. Parameters, optimizer state and EMA weights go in as
 * inputs and come back as outputs; between steps they stay tensors held by the Params.
 *
 * Very large models run the same math as two kinds of graph instead ('chunked'): forward + backward (+ clipping)
 * returning the gradients, then the optimizer update over chunks of parameters. Why: onnxruntime-node copies every
 * output into a fresh JS buffer while its own output buffers and the step's inputs are still alive, so a fused step
 * holds three copies of parameters + slots at its end. For Open-MAGVIT2 (370 M parameters, 4.4 GB of parameters
 * and Adam slots) that, on top of the activations, exceeded 24 GB. Chunked, the step holds parameters + slots once,
 * plus two copies of the gradients, plus one chunk's update. The chunks are flat vectors (src/nn/chunks.ts), so
 * the update is one program for all of them; this needs an elementwise optimizer (AdamW and SGD are).
 */
/**
 * The loss of a batch; optionally scalar metrics to log, and outputs to hand back (e.g. the reconstruction a
 * discriminator step needs next).
 */
export type LossFn<B> = (
  batch: B,
) => Tensor | { loss: Tensor; metrics?: Record<string, Tensor>; outputs?: Record<string, Tensor> };

export interface TrainStepOptions {
  optimizer: Optimizer;
  schedule: Schedule;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Keep an EMA of the trainable weights with this decay. */
  emaDecay?: number;
  /**
   * 'fused': the whole step is one graph and one run. 'chunked': gradients from one run, then the update in
   * parameter chunks (see above). Default: fused up to 1 GB of parameters + slots + EMA, chunked above.
   */
  update?: 'fused' | 'chunked';
  /** Chunked update: bytes of parameters per update run (default 128 MB; a bigger tensor gets a chunk alone). */
  chunkBytes?: number;
}

export interface StepResult {
  loss: number;
  lr: number;
  gradNorm?: number;
  metrics: Record<string, number>;
  outputs: Record<string, Tensor>;
}

/** The scalars a training loop logs for a step: loss, learning rate and (when clipped) the gradient norm. */
export function stepLog(r: StepResult): Record<string, number> {
  return { loss: r.loss, lr: r.lr, ...(r.gradNorm !== undefined ? { grad_norm: r.gradNorm } : {}) };
}

/** Above this much per-step state (1 GB), steps are chunked and end with a full garbage collection. */
const BIG_STATE_BYTES = 1 << 30;
const DEFAULT_CHUNK_BYTES = 128 << 20;

interface LossOutputs {
  loss: Tensor;
  metrics: Record<string, Tensor>;
  outputs: Record<string, Tensor>;
  gradNorm?: Tensor;
}
/** What the fused step returns: the loss outputs and the updated parameters, optimizer slots and EMA. */
type FusedOutputs = LossOutputs & { params: Tensor[]; state: Tensor[][]; ema: Tensor[] };
/** What the chunked step's gradient run returns: the loss outputs and one flat gradient per chunk. */
type ChunkedOutputs = LossOutputs & { grads: (Tensor | null)[] };

export class TrainStep<B extends Tree> {
  readonly params: [string, Param][];
  /** Optimizer slots per parameter (concrete tensors). */
  state: Tensor[][];
  ema: Tensor[] | null;
  /** Steps taken so far. */
  t = 0;
  readonly mode: 'fused' | 'chunked';
  // biome-ignore lint/suspicious/noExplicitAny: the fused and the gradient program take different arguments
  private readonly compiled: E.JitFunction<(...a: any[]) => Tree>;
  /** Chunked mode: the update runs over these flat groups of parameters. */
  private readonly chunks: Chunk[] = [];

  constructor(
    readonly model: Module,
    readonly lossFn: LossFn<B>,
    readonly opts: TrainStepOptions,
  ) {
    this.params = model.trainableParams();
    this.state = this.params.map(([, p]) => opts.optimizer.slots.map(() => E.zerosLike(p.value)));
    this.ema = opts.emaDecay ? this.params.map(([, p]) => p.value) : null;
    this.mode = opts.update ?? (this.stateBytes() > BIG_STATE_BYTES ? 'chunked' : 'fused');
    // Parameters and optimizer state come back as new JS buffers every step; an arena keeping the step's peak
    // activations on top of them ran LARP-L (194 M parameters) out of 24 GB on its second step (14.5 GB without).
    const runtime = { memoryArena: false };
    if (this.mode === 'fused') {
      this.compiled = E.jit(
        (params: Tensor[], state: Tensor[][], ema: Tensor[], scalars: Tensor[], batch: B) => {
          const { grads, ...result } = this.lossAndGrads(params, batch);
          return { ...result, ...this.update(params, grads, state, ema, scalars) } as unknown as Tree;
        },
        { name: 'train_step', ...runtime },
      );
    } else {
      this.chunks = packChunks(
        this.params.map(([, p]) => p.value.size),
        Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK_BYTES) / 4),
      );
      this.compiled = E.jit(
        (params: Tensor[], batch: B) => {
          const { grads, ...result } = this.lossAndGrads(params, batch);
          return {
            ...result,
            grads: this.chunks.map((c) =>
              concatFlat(
                c.idx.map((i) => grads[i]!),
                c.len,
              ),
            ),
          } as unknown as Tree;
        },
        { name: 'grad_step', ...runtime },
      );
    }
  }

  /** The loss, metrics, outputs and (clipped) gradients of a batch, traced with `params` bound into the model. */
  private lossAndGrads(params: Tensor[], batch: B): LossOutputs & { grads: Tensor[] } {
    const ps = this.params.map(([, p]) => p);
    const out = bindParams(ps, params, () => {
      this.model.train();
      return this.lossFn(batch);
    });
    const { loss, metrics = {}, outputs = {} } = out instanceof E.Tensor ? { loss: out } : out;
    const grads = E.gradients(loss, params);
    const result: LossOutputs & { grads: Tensor[] } = { loss, metrics, outputs, grads };
    if (this.opts.clipNorm) {
      const c = clipGradNorm(grads, this.opts.clipNorm);
      result.grads = c.grads;
      result.gradNorm = c.norm;
    }
    return result;
  }

  /** Optimizer update and EMA of some parameters (graph code, traced into the fused step or an update chunk). */
  private update(params: Tensor[], grads: Tensor[], state: Tensor[][], ema: Tensor[], scalars: Tensor[]) {
    const updated = params.map((p, i) => this.opts.optimizer.update(p, grads[i]!, state[i]!, scalars));
    return {
      params: updated.map((u) => u.p),
      state: updated.map((u) => u.state),
      ema: this.opts.emaDecay ? updated.map((u, i) => emaUpdate(ema[i]!, u.p, this.opts.emaDecay!)) : [],
    };
  }

  /**
   * The update of one flat chunk. No arena: a tensor bigger than a chunk (a 266,256-row embedding: 0.8 GB) gets a
   * chunk alone, and an arena would keep that chunk's temporaries resident through every later gradient run.
   */
  private readonly updateChunk = E.jit(
    (p: Tensor, g: Tensor, slots: Tensor[], ema: Tensor[], scalars: Tensor[]) => {
      const u = this.update([p], [g], [slots], ema, scalars);
      return { p: u.params[0], slots: u.state[0], ema: u.ema } as unknown as Tree;
    },
    { name: 'update_chunk', memoryArena: false },
  );

  /** Runs one step on `batch` and advances the parameters, optimizer state and EMA in place. */
  run(batch: B): StepResult {
    const lr = this.opts.schedule(this.t);
    const scalars = this.opts.optimizer.scalars(this.t + 1, lr).map((v) => E.scalar(v));
    const values = this.params.map(([, p]) => p.value);
    let out: LossOutputs;
    if (this.mode === 'fused') {
      const fused = this.compiled(values, this.state, this.ema ?? [], scalars, batch) as unknown as FusedOutputs;
      out = fused;
      this.params.forEach(([, p], i) => {
        p.value = fused.params[i]!;
      });
      this.state = fused.state;
      if (this.ema) this.ema = fused.ema;
      // The previous step's parameters and slots are garbage now; free big ones before the next step allocates.
      if (this.stateBytes() > BIG_STATE_BYTES) collectGarbage();
    } else {
      const chunked = this.compiled(values, batch) as unknown as ChunkedOutputs;
      out = chunked;
      const grads = chunked.grads;
      this.chunks.forEach((c, k) => {
        const shapes = c.idx.map((i) => this.params[i]![1].value.shape);
        const u = this.updateChunk(
          flatOf(
            c.idx.map((i) => this.params[i]![1].value),
            c.len,
          ),
          grads[k]!,
          this.opts.optimizer.slots.map((_, j) =>
            flatOf(
              c.idx.map((i) => this.state[i]![j]!),
              c.len,
            ),
          ),
          this.ema
            ? [
                flatOf(
                  c.idx.map((i) => this.ema![i]!),
                  c.len,
                ),
              ]
            : [],
          scalars,
        ) as { p: Tensor; slots: Tensor[]; ema: Tensor[] };
        const ps = viewsOf(u.p, shapes),
          slots = u.slots.map((t) => viewsOf(t, shapes)),
          ema = u.ema.map((t) => viewsOf(t, shapes));
        c.idx.forEach((i, n) => {
          this.params[i]![1].value = ps[n]!;
          this.state[i] = slots.map((v) => v[n]!);
          if (this.ema) this.ema[i] = ema[0]![n]!;
        });
        grads[k] = null;
        // This chunk's old parameters, slots and gradients are garbage: free them before the next chunk.
        collectGarbage();
      });
    }
    this.t++;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.metrics)) metrics[k] = E.item(v);
    return {
      loss: E.item(out.loss),
      lr,
      gradNorm: out.gradNorm ? E.item(out.gradNorm) : undefined,
      metrics,
      outputs: out.outputs,
    };
  }

  /** Bytes of parameters, optimizer slots and EMA weights (what each step replaces). */
  stateBytes(): number {
    const n = this.params.reduce((a, [, p]) => a + p.value.size, 0);
    return 4 * n * (1 + this.opts.optimizer.slots.length + (this.ema ? 1 : 0));
  }

  /** Optimizer slots and EMA weights by name ("<param>.<slot>", "ema.<param>"), for checkpoints. */
  optimizerState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.params.forEach(([n], i) => {
      this.opts.optimizer.slots.forEach((slot, j) => {
        out.set(`${n}.${slot}`, this.state[i]![j]!);
      });
    });
    this.ema?.forEach((t, i) => {
      out.set(`ema.${this.params[i]![0]}`, t);
    });
    return out;
  }

  /** Restores what optimizerState() saved, and the step count; every slot must be present with the right shape. */
  loadOptimizerState(saved: Map<string, Tensor>, t: number, source?: string): void {
    const get = (name: string, like: Tensor): Tensor => {
      const v = saved.get(name);
      if (!v) throw new VtokError(`optimizer state has no "${name}"`, source);
      if (v.shape.join() !== like.shape.join())
        throw new VtokError(`optimizer state "${name}" is [${v.shape}], expected [${like.shape}]`, source);
      return v;
    };
    this.state = this.params.map(([n, p]) => this.opts.optimizer.slots.map((slot) => get(`${n}.${slot}`, p.value)));
    if (this.ema) this.ema = this.params.map(([n, p]) => get(`ema.${n}`, p.value));
    this.t = t;
  }

  /** The EMA weights by parameter name (for evaluation or saving). */
  emaState(): Map<string, Tensor> {
    if (!this.ema) throw new Error('this training step keeps no EMA');
    return new Map(this.params.map(([n], i) => [n, this.ema![i]!]));
  }
}
