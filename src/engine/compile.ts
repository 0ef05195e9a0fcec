import { writeFileSync } from 'node:fs';
import type { Rng } from '../util/rng.js';
import { gradients } from './autodiff.js';
import { lowerToOnnx } from './onnx.js';
import { drawNoise } from './ops/creation.js';
import { defaultRng } from './random.js';
import { type RuntimeOptions, Session } from './runtime.js';
import { concrete, currentGraph, Graph, Tensor, withGraph } from './tensor.js';
import { flatten, signature, type Tree, type TreeDef, unflatten } from './tree.js';

/**
 * Tracing and compilation. `trace` records a function of tensors into a Graph; `jit` lowers that graph to ONNX,
 * opens an onnxruntime session, and caches it per input signature; `valueAndGrad`/`grad` add the backward pass
 * to the same graph. Called inside another trace, all of them simply inline.
 */

export interface Traced {
  graph: Graph;
  outDef: TreeDef;
}

/** Traces `fn` on symbolic stand-ins for `args` (only their shapes and dtypes matter). */
export function trace(fn: (...args: Tree[]) => Tree, args: Tree[]): Traced {
  const graph = new Graph();
  const [leaves, def] = flatten(args);
  const symbolic = leaves.map((t) => graph.addInput(t.shape, t.dtype));
  const out = withGraph(graph, () => fn(...(unflatten(def, symbolic) as Tree[])));
  const [outLeaves, outDef] = flatten(out);
  graph.outputs = outLeaves;
  return { graph, outDef };
}

export interface JitOptions extends RuntimeOptions {
  name?: string;
  /** Generator for the noise inputs of the function (default: the engine's default RNG). */
  rng?: () => Rng;
}

export interface Compiled {
  session: Session;
  traced: Traced;
  model: Uint8Array;
}

export interface JitFunction<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /** Compiles (or fetches) the program for these arguments without running it. */
  compile(...args: Parameters<F>): Compiled;
  /** Number of distinct compiled signatures. */
  readonly cacheSize: number;
}

export function jit<F extends (...args: any[]) => Tree>(fn: F, opts: JitOptions = {}): JitFunction<F> {
  const cache = new Map<string, Compiled>();
  const compile = (...args: Parameters<F>): Compiled => {
    const [leaves, def] = flatten(args);
    const key = signature(def, leaves);
    let c = cache.get(key);
    if (!c) {
      const traced = trace(fn as (...a: Tree[]) => Tree, args);
      const model = lowerToOnnx(traced.graph, { name: opts.name });
      const g = traced.graph;
      const session = new Session(model, g.inputs.map((_, i) => `in${i}`), g.outputs.map((_, i) => `out${i}`), opts);
      c = { session, traced, model };
      cache.set(key, c);
    }
    return c;
  };
  const call = ((...args: Parameters<F>) => {
    if (currentGraph()) return fn(...args);
    const c = compile(...args);
    const [leaves] = flatten(args);
    const g = c.traced.graph;
    const rng = opts.rng?.() ?? defaultRng();
    let argIndex = 0;
    const feeds = g.inputs.map((t, i) => {
      const role = g.roles[i];
      if (role.kind === 'random') {
        const data = drawNoise(rng, role.dist, t.size);
        return { dtype: t.dtype, shape: [...t.shape], data };
      }
      const a = leaves[argIndex++];
      if (!a.isConcrete) throw new Error('jit: arguments must be concrete tensors');
      return { dtype: a.dtype, shape: [...a.shape], data: a.data };
    });
    const outs = c.session.run(feeds).map((o) => concrete(o.data, o.shape, o.dtype));
    return unflatten(c.traced.outDef, outs);
  }) as JitFunction<F>;
  call.compile = compile;
  Object.defineProperty(call, 'cacheSize', { get: () => cache.size });
  return call;
}

/** Writes the ONNX model of `fn` traced on `args` to `path`, runnable by any stock onnxruntime. */
export function exportOnnx(fn: (...args: Tree[]) => Tree, args: Tree[], path: string, opts: { inputNames?: string[]; outputNames?: string[] } = {}): void {
  const { graph } = trace(fn, args);
  if (graph.roles.some((r) => r.kind === 'random')) throw new Error('exportOnnx: the function draws noise; pass noise as an argument instead');
  writeFileSync(path, lowerToOnnx(graph, opts));
}

export interface GradOptions {
  /** Which arguments to differentiate with respect to (default 0). */
  argnums?: number | number[];
  /** fn returns [loss, aux]; aux is passed through. */
  hasAux?: boolean;
}

/**
 * valueAndGrad(f)(...args) → [value, grads] (and aux with hasAux: [value, grads, aux]). Gradients have the
 * structure of the differentiated arguments. Runs compiled (one ORT run) when called on concrete tensors.
 */
export function valueAndGrad<F extends (...args: any[]) => Tree>(fn: F, opts: GradOptions = {}): (...args: Parameters<F>) => any {
  const argnums = opts.argnums ?? 0;
  const traced = (...args: Tree[]) => {
    const out = fn(...args);
    const [loss, aux] = opts.hasAux ? (out as [Tensor, Tree]) : [out as Tensor, undefined];
    if (!(loss instanceof Tensor) || loss.size !== 1) throw new Error('valueAndGrad: the function must return a scalar loss');
    const nums = typeof argnums === 'number' ? [argnums] : argnums;
    const flat = nums.map((i) => flatten(args[i]));
    const grads = gradients(loss, flat.flatMap(([leaves]) => leaves));
    let k = 0;
    const gradTrees = flat.map(([leaves, def]) => unflatten(def, grads.slice(k, (k += leaves.length))));
    const g = typeof argnums === 'number' ? gradTrees[0] : gradTrees;
    return (opts.hasAux ? [loss, g, aux] : [loss, g]) as Tree;
  };
  const compiled = jit(traced);
  return (...args: Parameters<F>) => (currentGraph() ? traced(...args) : compiled(...(args as Tree[])));
}

export function grad<F extends (...args: any[]) => Tree>(fn: F, opts: GradOptions = {}): (...args: Parameters<F>) => any {
  const vg = valueAndGrad(fn, opts);
  return (...args: Parameters<F>) => (vg(...args) as Tree[])[1];
}
