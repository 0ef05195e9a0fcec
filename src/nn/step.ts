import * as E from '../engine/index.js';
import type { Tensor, Tree } from '../engine/index.js';
import { clipGradNorm, emaUpdate, type Optimizer, type Schedule } from './optim.js';
import { bindParams, type Module, type Param } from './module.js';
import { VtokError } from '../util/errors.js';
import { collectGarbage } from '../util/gc.js';

/**
 * One compiled training step: forward, backward, gradient clipping, optimizer update and EMA of weights, traced
 * into a single ONNX graph and run as one onnxruntime call. Parameters, optimizer state and EMA weights go in as
 * inputs and come back as outputs; between steps they stay tensors held by the Params.
 */
/**
 * The loss of a batch; optionally scalar metrics to log, and outputs to hand back (e.g. the reconstruction a
 * discriminator step needs next).
 */
export type LossFn<B> = (batch: B) => Tensor | { loss: Tensor; metrics?: Record<string, Tensor>; outputs?: Record<string, Tensor> };

export interface TrainStepOptions {
  optimizer: Optimizer;
  schedule: Schedule;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Keep an EMA of the trainable weights with this decay. */
  emaDecay?: number;
}

export interface StepResult { loss: number; lr: number; gradNorm?: number; metrics: Record<string, number>; outputs: Record<string, Tensor> }

/** Above this much per-step state (1 GB), each step ends with a full garbage collection. */
const BIG_STATE_BYTES = 1 << 30;

export class TrainStep<B extends Tree> {
  readonly params: [string, Param][];
  /** Optimizer slots per parameter (concrete tensors). */
  state: Tensor[][];
  ema: Tensor[] | null;
  /** Steps taken so far. */
  t = 0;
  private readonly compiled: E.JitFunction<(...a: any[]) => Tree>;

  constructor(readonly model: Module, readonly lossFn: LossFn<B>, readonly opts: TrainStepOptions) {
    this.params = model.trainableParams();
    this.state = this.params.map(([, p]) => opts.optimizer.slots.map(() => E.zerosLike(p.value)));
    this.ema = opts.emaDecay ? this.params.map(([, p]) => p.value) : null;
    this.compiled = E.jit((params: Tensor[], state: Tensor[][], ema: Tensor[], scalars: Tensor[], batch: B) => this.trace(params, state, ema, scalars, batch), {
      name: 'train_step',
      // Parameters and optimizer state come back as new JS buffers every step; an arena keeping the step's peak
      // activations on top of them ran LARP-L (194 M parameters) out of 24 GB on its second step (14.5 GB without).
      memoryArena: false,
    });
  }

  private trace(params: Tensor[], state: Tensor[][], ema: Tensor[], scalars: Tensor[], batch: B): Tree {
    const ps = this.params.map(([, p]) => p);
    const out = bindParams(ps, params, () => {
      this.model.train();
      return this.lossFn(batch);
    });
    const { loss, metrics = {}, outputs = {} } = out instanceof E.Tensor ? { loss: out } : out;
    let grads = E.gradients(loss, params);
    const result: Record<string, Tree> = { loss, metrics, outputs: outputs as Record<string, Tree> };
    if (this.opts.clipNorm) {
      const c = clipGradNorm(grads, this.opts.clipNorm);
      grads = c.grads;
      result.gradNorm = c.norm;
    }
    const updated = params.map((p, i) => this.opts.optimizer.update(p, grads[i], state[i], scalars));
    result.params = updated.map((u) => u.p);
    result.state = updated.map((u) => u.state);
    if (this.opts.emaDecay) result.ema = updated.map((u, i) => emaUpdate(ema[i], u.p, this.opts.emaDecay!));
    return result;
  }

  /** Runs one step on `batch` and advances the parameters, optimizer state and EMA in place. */
  run(batch: B): StepResult {
    const lr = this.opts.schedule(this.t);
    const scalars = this.opts.optimizer.scalars(this.t + 1, lr).map((v) => E.scalar(v));
    const out = this.compiled(this.params.map(([, p]) => p.value), this.state, this.ema ?? [], scalars, batch) as Record<string, any>;
    this.params.forEach(([, p], i) => (p.value = out.params[i]));
    this.state = out.state;
    if (this.ema) this.ema = out.ema;
    this.t++;
    // The previous step's parameters and slots are garbage now; free big ones before the next step allocates.
    if (this.stateBytes() > BIG_STATE_BYTES) collectGarbage();
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.metrics as Record<string, Tensor>)) metrics[k] = E.item(v);
    return { loss: E.item(out.loss), lr, gradNorm: out.gradNorm ? E.item(out.gradNorm) : undefined, metrics, outputs: out.outputs };
  }

  /** Bytes of parameters, optimizer slots and EMA weights (what each step replaces). */
  stateBytes(): number {
    const n = this.params.reduce((a, [, p]) => a + p.value.size, 0);
    return 4 * n * (1 + this.opts.optimizer.slots.length + (this.ema ? 1 : 0));
  }

  /** Optimizer slots and EMA weights by name ("<param>.<slot>", "ema.<param>"), for checkpoints. */
  optimizerState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.params.forEach(([n], i) => this.opts.optimizer.slots.forEach((slot, j) => out.set(`${n}.${slot}`, this.state[i][j])));
    this.ema?.forEach((t, i) => out.set(`ema.${this.params[i][0]}`, t));
    return out;
  }

  /** Restores what optimizerState() saved, and the step count; every slot must be present with the right shape. */
  loadOptimizerState(saved: Map<string, Tensor>, t: number, source?: string): void {
    const get = (name: string, like: Tensor): Tensor => {
      const v = saved.get(name);
      if (!v) throw new VtokError(`optimizer state has no "${name}"`, source);
      if (v.shape.join() !== like.shape.join()) throw new VtokError(`optimizer state "${name}" is [${v.shape}], expected [${like.shape}]`, source);
      return v;
    };
    this.state = this.params.map(([n, p]) => this.opts.optimizer.slots.map((slot) => get(`${n}.${slot}`, p.value)));
    if (this.ema) this.ema = this.params.map(([n, p]) => get(`ema.${n}`, p.value));
    this.t = t;
  }

  /** The EMA weights by parameter name (for evaluation or saving). */
  emaState(): Map<string, Tensor> {
    if (!this.ema) throw new Error('this training step keeps no EMA');
    return new Map(this.params.map(([n], i) => [n, this.ema![i]]));
  }
}
