import type { Rng } from '../util/rng.js';
import { gradients } from './autodiff.js';
import { backend } from './backends/backend.js';
import { allocate } from './dtype.js';
import { drawNoise } from './ops/creation.js';
import { lowerToOnnx } from './onnx.js';
import {
  type Precision,
  type QuantizeOptions,
  type QuantizeReport,
  QuantizeError,
  quantizeStatic,
} from './quantize.js';
import { defaultRng } from './random.js';
import { type HostTensor, type RuntimeOptions, Session } from './runtime.js';
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
  /**
   * 'int8': each compiled signature is quantized (src/engine/quantize.ts: int8 QDQ convolutions, calibrated on
   * the float model) before its session opens. Default 'fp32'.
   */
  precision?: Precision;
  /**
   * int8: the argument lists to calibrate a signature on (each with the same shapes and dtypes as `args`, the
   * arguments it is compiled for). Default: `[args]`, i.e. calibrated on the first call of each signature.
   */
  // biome-ignore lint/suspicious/noExplicitAny: it takes the arguments of the jitted function, whatever their types
  calibrate?: (...args: any[]) => unknown[][];
  /** int8: which nodes to quantize and how. */
  quantize?: QuantizeOptions;
}

export interface Compiled {
  session: Session;
  traced: Traced;
  /** The model the session runs (quantized for precision 'int8'). */
  model: Uint8Array;
  /** What int8 quantization did (precision 'int8' only). */
  quantization?: QuantizeReport;
}

/** Host feeds of a traced graph for concrete `args`: argument leaves in order, noise inputs drawn from `rng`. */
function feedsFor(graph: Graph, args: unknown[], rng: Rng): HostTensor[] {
  const [leaves] = flatten(args as Tree[]);
  let argIndex = 0;
  return graph.inputs.map((t, i) => {
    const role = graph.roles[i]!;
    if (role.kind === 'random') {
      const data = drawNoise(rng, role.dist, t.size);
      return { dtype: t.dtype, shape: [...t.shape], data };
    }
    const a = leaves[argIndex++]!;
    if (!a.isConcrete) throw new Error('jit: arguments must be concrete tensors');
    return { dtype: a.dtype, shape: [...a.shape], data: a.data };
  });
}

export interface JitFunction<F extends (...args: never[]) => unknown> {
  /** Runs the compiled program to completion (backends with a synchronous run: onnxruntime-node). */
  (...args: Parameters<F>): ReturnType<F>;
  /**
   * Runs the compiled program through the backend's asynchronous run, the only one an asynchronous backend
   * (onnxruntime-web) has. Compiling needs no run, except int8 calibration, which runs synchronously.
   */
  runAsync(...args: Parameters<F>): Promise<ReturnType<F>>;
  /** Compiles (or fetches) the program for these arguments without running it. */
  compile(...args: Parameters<F>): Compiled;
  /** Number of distinct compiled signatures. */
  readonly cacheSize: number;
  /** Closes every compiled session now (their weights and memory go back); a later call compiles again. */
  dispose(): void;
}

// biome-ignore lint/suspicious/noExplicitAny: any function of trees, with its own parameter types
export function jit<F extends (...args: any[]) => Tree>(fn: F, opts: JitOptions = {}): JitFunction<F> {
  const cache = new Map<string, Compiled>();
  const compile = (...args: Parameters<F>): Compiled => {
    const [leaves, def] = flatten(args);
    const key = signature(def, leaves);
    let c = cache.get(key);
    if (!c) {
      const traced = trace(fn as (...a: Tree[]) => Tree, args);
      let model = lowerToOnnx(traced.graph, { name: opts.name });
      const g = traced.graph;
      let quantization: QuantizeReport | undefined;
      if (opts.precision === 'int8') {
        const sets = opts.calibrate ? opts.calibrate(...args) : [args];
        if (!Array.isArray(sets) || sets.length === 0)
          throw new QuantizeError(`${opts.name ?? 'jit'}: calibrate returned no argument lists`);
        const feeds = sets.map((s, k) => {
          if (!Array.isArray(s))
            throw new QuantizeError(`${opts.name ?? 'jit'}: calibration set ${k} is not an argument list`);
          const [l, d] = flatten(s as Tree[]);
          const sig = signature(d, l);
          if (sig !== key)
            throw new QuantizeError(
              `${opts.name ?? 'jit'}: calibration set ${k} has signature ${sig}, the program is compiled for ${key}`,
            );
          if (l.some((t) => !t.isConcrete))
            throw new QuantizeError(
              `${opts.name ?? 'jit'}: calibration set ${k} holds symbolic tensors (calibration needs concrete inputs)`,
            );
          return feedsFor(g, s, opts.rng?.() ?? defaultRng());
        });
        ({ model, report: quantization } = quantizeStatic(model, feeds, {
          ...opts.quantize,
          runtime: { threads: opts.threads, executionProviders: opts.executionProviders, ...opts.quantize?.runtime },
        }));
      } else if (opts.precision !== undefined && opts.precision !== 'fp32') {
        throw new QuantizeError(
          `${opts.name ?? 'jit'}: unknown precision "${opts.precision as string}" (fp32 or int8)`,
        );
      }
      const session = new Session(
        model,
        g.inputs.map((_, i) => `in${i}`),
        g.outputs.map((_, i) => `out${i}`),
        opts,
      );
      c = { session, traced, model, quantization };
      cache.set(key, c);
    }
    return c;
  };
  const call = ((...args: Parameters<F>) => {
    if (currentGraph()) return fn(...args);
    const c = compile(...args);
    const feeds = feedsFor(c.traced.graph, args, opts.rng?.() ?? defaultRng());
    // every output's shape is static: allocate them here, so the run writes each one once, into its final buffer
    const outputs = c.traced.graph.outputs.map((t) => ({
      dtype: t.dtype,
      shape: [...t.shape],
      data: allocate(t.dtype, t.size),
    }));
    const outs = c.session.run(feeds, outputs).map((o) => concrete(o.data, o.shape, o.dtype));
    return unflatten(c.traced.outDef, outs);
  }) as JitFunction<F>;
  call.runAsync = async (...args: Parameters<F>) => {
    if (currentGraph())
      throw new Error(`${opts.name ?? 'jit'}: runAsync inside a trace (call the function itself there)`);
    const c = compile(...args);
    const feeds = feedsFor(c.traced.graph, args, opts.rng?.() ?? defaultRng());
    const outs = (await c.session.runAsync(feeds)).map((o) => concrete(o.data, o.shape, o.dtype));
    return unflatten(c.traced.outDef, outs) as ReturnType<F>;
  };
  call.compile = compile;
  call.dispose = () => {
    for (const c of cache.values()) c.session.dispose();
    cache.clear();
  };
  Object.defineProperty(call, 'cacheSize', { get: () => cache.size });
  return call;
}

/**
 * Writes the ONNX model of `fn` traced on `args` to `path` (through the backend's host), runnable by any stock
 * onnxruntime.
 */
export function exportOnnx(
  fn: (...args: Tree[]) => Tree,
  args: Tree[],
  path: string,
  opts: { inputNames?: string[]; outputNames?: string[] } = {},
): void {
  const { graph } = trace(fn, args);
  if (graph.roles.some((r) => r.kind === 'random'))
    throw new Error('exportOnnx: the function draws noise; pass noise as an argument instead');
  const b = backend();
  if (!b.writeFile)
    throw new Error(
      `exportOnnx: the ${b.name} backend cannot write files; ` +
        'lower the graph with lowerToOnnx and save the bytes yourself',
    );
  b.writeFile(path, lowerToOnnx(graph, opts));
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
// biome-ignore lint/suspicious/noExplicitAny: any function of trees, with its own parameter types
export function valueAndGrad<F extends (...args: any[]) => Tree>(
  fn: F,
  opts: GradOptions = {},
): (...args: Parameters<F>) => Tree {
  const argnums = opts.argnums ?? 0;
  const traced = (...args: Tree[]) => {
    const out = fn(...args);
    const [loss, aux] = opts.hasAux ? (out as [Tensor, Tree]) : [out as Tensor, undefined];
    if (!(loss instanceof Tensor) || loss.size !== 1)
      throw new Error('valueAndGrad: the function must return a scalar loss');
    const nums = typeof argnums === 'number' ? [argnums] : argnums;
    const flat = nums.map((i) => flatten(args[i]!));
    const grads = gradients(
      loss,
      flat.flatMap(([leaves]) => leaves),
    );
    let k = 0;
    const gradTrees = flat.map(([leaves, def]) => {
      const tree = unflatten(def, grads.slice(k, k + leaves.length));
      k += leaves.length;
      return tree;
    });
    const g = typeof argnums === 'number' ? gradTrees[0] : gradTrees;
    return (opts.hasAux ? [loss, g, aux] : [loss, g]) as Tree;
  };
  const compiled = jit(traced);
  return (...args: Parameters<F>) => (currentGraph() ? traced(...args) : compiled(...(args as Tree[])));
}

// biome-ignore lint/suspicious/noExplicitAny: any function of trees, with its own parameter types
export function grad<F extends (...args: any[]) => Tree>(
  fn: F,
  opts: GradOptions = {},
): (...args: Parameters<F>) => Tree {
  const vg = valueAndGrad(fn, opts);
  return (...args: Parameters<F>) => (vg(...args) as Tree[])[1]!;
}
