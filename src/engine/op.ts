import type { DType } from './dtype.js';
import { currentGraph, Tensor } from './tensor.js';

/**
 * The op registry. A primitive is declared once, in one place: its shape/dtype rule (`infer`), its ONNX lowering
 * (`lower`, one or a few standard ai.onnx nodes) and its VJP (`vjp`, written with other ops, so backward graphs
 * are standard ONNX too). Everything higher level (attention, norms, losses) is a composition of these.
 */
export interface Info {
  shape: readonly number[];
  dtype: DType;
}

/** ONNX attribute values; floats are tagged because JS cannot tell 1.0 from 1. */
export type Attr =
  | number
  | number[]
  | string
  | { float: number }
  | { floats: number[] }
  | { tensor: { dtype: DType; values: number[]; dims: number[] } };

export interface LowerCtx {
  /** Appends one ONNX node. An empty input name stands for an omitted optional input. */
  emit(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, Attr>, domain?: string): void;
  /** A fresh intermediate value name. */
  fresh(hint?: string): string;
  /** An int64 initializer (shapes, axes, pads, slice bounds), shared between nodes that use the same values. */
  i64(values: readonly number[], shape?: readonly number[]): string;
  /** A scalar initializer of `dtype`. */
  scalar(value: number, dtype: DType): string;
}

/**
 * An op's operands as its own rules see them: an op knows its arity, so the positions it reads are there (typed
 * as present under noUncheckedIndexedAccess, which would otherwise add `| undefined` to every destructured input).
 */
export type Operands<T> = T[] & { [K in 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7]: T };

/** A plain array as operands (the caller passes exactly the op's inputs or outputs). */
export const operands = <T>(xs: T[]): Operands<T> => xs as Operands<T>;

export interface Node<A = unknown> {
  op: OpDef<A>;
  inputs: Operands<Tensor>;
  attrs: A;
  outputs: Operands<Tensor>;
}

/**
 * Cotangents of the inputs given those of the outputs (null = zero). `needs[i]` says whether input i wants a
 * gradient, so rules can skip work.
 */
export type Vjp<A = unknown> = (cts: Operands<Tensor | null>, node: Node<A>, needs: boolean[]) => (Tensor | null)[];

/** Marks an op with no VJP; its outputs must not lie on a path to the loss. */
export interface NotDifferentiable {
  readonly notDifferentiable: string;
}

/** The `vjp` of an op that has none, with the reason (shown if a gradient is ever asked through it). */
export function notDifferentiable(reason: string): NotDifferentiable {
  return { notDifferentiable: reason };
}

export interface OpDef<A = unknown> {
  name: string;
  infer(inputs: Operands<Info>, attrs: A): Info[];
  lower(ctx: LowerCtx, inputs: Operands<string>, outputs: Operands<string>, attrs: A, node: Node<A>): void;
  /** Required, so that the type checker rejects an op that forgot to say whether it is differentiable. */
  vjp: Vjp<A> | NotDifferentiable;
}

export const registry = new Map<string, OpDef>();

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  if (registry.has(def.name)) throw new Error(`op ${def.name} defined twice`);
  registry.set(def.name, def as OpDef);
  return def;
}

/** Runs one op on concrete inputs (installed by eager.ts, which compiles single-op graphs). */
let eagerRunner: ((op: OpDef, inputs: Tensor[], attrs: unknown, infos: Info[]) => Tensor[]) | null = null;
export function setEagerRunner(fn: typeof eagerRunner): void {
  eagerRunner = fn;
}

/** Applies an op: records a node while tracing, or computes at once in eager mode. */
export function apply<A>(op: OpDef<A>, inputs: Tensor[], attrs: A): Tensor[] {
  let infos: Info[];
  try {
    infos = op.infer(operands(inputs), attrs);
  } catch (e) {
    throw new Error(`${op.name}(${inputs.map((t) => t.describe()).join(', ')}): ${(e as Error).message}`);
  }
  const graph = currentGraph();
  if (graph) {
    for (const t of inputs) {
      if (t.source.kind !== 'concrete' && t.source.graph !== graph) {
        throw new Error(
          `${op.name}: input ${t.describe()} belongs to another trace (a symbolic tensor escaped its function)`,
        );
      }
    }
    const node: Node = { op: op as OpDef, inputs: operands(inputs), attrs, outputs: operands([]) };
    node.outputs = operands(
      infos.map((inf, index) => new Tensor([...inf.shape], inf.dtype, { kind: 'node', graph, node, index })),
    );
    graph.nodes.push(node);
    return node.outputs;
  }
  for (const t of inputs) {
    if (!t.isConcrete) throw new Error(`${op.name}: symbolic tensor ${t.describe()} used outside of its trace`);
  }
  if (!eagerRunner)
    throw new Error('eager mode is not initialised (import the engine through src/engine/index.ts or core.ts)');
  return eagerRunner(op as OpDef, inputs, attrs, infos);
}

export function apply1<A>(op: OpDef<A>, inputs: Tensor[], attrs: A): Tensor {
  return apply(op, inputs, attrs)[0]!;
}
