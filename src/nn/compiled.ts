import * as E from '../engine/core.js';
import type { Tensor, Tree } from '../engine/core.js';
import { VtokError } from '../util/errors.js';
import { bindParams, type Module } from './module.js';

/**
 * A module's inference function compiled once and kept: traced in eval mode (and any further inference state the
 * model needs, e.g. a deterministic quantizer), with the module's mode restored afterwards since it may be shared
 * with training. Two ways to hold the weights:
 *  - 'fed': the weights are inputs of the graph, so the program is compiled once per input shape and always sees
 *    the current weights (a model being trained and evaluated in turn);
 *  - 'baked': the weights are constants in the graph (faster on CPU, and what int8 quantization needs); when a
 *    parameter's tensor is replaced (a training step, loadStateDict) the program is disposed and compiled again on
 *    the next call.
 * int8 (`precision: 'int8'`) quantizes each compiled signature, calibrated on `calibrate(...args)` (default: the
 * first arguments of that signature); it needs baked weights.
 */
export interface CompileOptions<A extends Tensor[]> {
  name: string;
  weights?: 'fed' | 'baked';
  precision?: E.Precision;
  quantize?: E.QuantizeOptions;
  /** int8: argument lists to calibrate a signature on, given the arguments it is compiled for. */
  calibrate?: (...args: A) => Tensor[][];
  /** Sets inference state beyond eval mode while tracing; returns how to undo it. */
  inferenceState?: () => () => void;
}

/** A compiled inference function as callers that only call it see it. */
export type InferenceFn<A extends Tensor[]> = (...args: A) => Tree;

export interface CompiledFn<A extends Tensor[], R extends Tree> {
  (...args: A): R;
  /** The same through the backend's asynchronous run (E.JitFunction.runAsync), as a browser backend needs. */
  runAsync(...args: A): Promise<R>;
  /** The compiled program for these arguments (compiled now if need be) without running it, to inspect it. */
  compile(...args: A): E.Compiled;
  /** Closes the compiled sessions now; the next call compiles again. */
  dispose(): void;
}

export function compileInference<A extends Tensor[], R extends Tree>(
  module: Module,
  fn: (...args: A) => R,
  options: CompileOptions<A> | string,
): CompiledFn<A, R> {
  const o: CompileOptions<A> = typeof options === 'string' ? { name: options } : options;
  const params = module.namedParams().map(([, p]) => p);
  const traced = <T>(f: () => T): T => {
    const training = module.training;
    module.eval();
    const undo = o.inferenceState?.();
    try {
      return f();
    } finally {
      undo?.();
      module.train(training);
    }
  };
  const jitOptions: E.JitOptions = {
    name: o.name,
    precision: o.precision,
    quantize: o.quantize,
    calibrate: o.calibrate as E.JitOptions['calibrate'],
  };

  if ((o.weights ?? 'fed') === 'fed') {
    if (o.precision === 'int8')
      throw new VtokError(`${o.name}: int8 quantizes constant weights; compile with weights: 'baked'`);
    const jitted = E.jit(
      (w: Tensor[], ...args: A) => traced(() => bindParams(params, w, () => fn(...args))),
      jitOptions,
    );
    const values = () => params.map((p) => p.value);
    return Object.assign((...args: A) => jitted(values(), ...args) as R, {
      runAsync: (...args: A) => jitted.runAsync(values(), ...args) as Promise<R>,
      compile: (...args: A) => jitted.compile(values(), ...args),
      dispose: () => jitted.dispose(),
    });
  }

  let held: { weights: Tensor[]; run: E.JitFunction<(...args: A) => R> } | null = null;
  const dispose = () => {
    held?.run.dispose();
    held = null;
  };
  const current = () => {
    const weights = params.map((p) => p.value);
    if (!held || weights.some((w, i) => w !== held!.weights[i])) {
      dispose();
      held = { weights, run: E.jit((...a: A) => traced(() => fn(...a)), jitOptions) };
    }
    return held.run;
  };
  return Object.assign((...args: A) => current()(...args), {
    runAsync: (...args: A) => current().runAsync(...args),
    compile: (...args: A) => current().compile(...args),
    dispose,
  });
}
