import * as E from '../engine/index.js';
import type { Tensor, Tree } from '../engine/index.js';
import { bindParams, type Module, type Param } from '../nn/index.js';

/**
 * Compiled inference over a module whose weights keep changing (a model being trained and evaluated in turn):
 * the weights are inputs of the compiled graph, not baked constants, so the program is compiled once per input
 * shape and always sees the current weights. The function is traced in eval mode (no dropout) and the module's
 * mode is restored afterwards.
 */
export type InferenceFn<A extends Tensor[]> = (...args: A) => Tree;

export function compileInference<A extends Tensor[]>(module: Module, fn: (...args: A) => Tree, name: string): InferenceFn<A> {
  const params: Param[] = module.namedParams().map(([, p]) => p);
  const jitted = E.jit((w: Tensor[], ...args: A) => {
    const training = module.training;
    module.eval();
    try {
      return bindParams(params, w, () => fn(...args));
    } finally {
      module.train(training);
    }
  }, { name });
  return (...args: A) => jitted(params.map((p) => p.value), ...args);
}
