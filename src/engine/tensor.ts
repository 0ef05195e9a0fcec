import { type DType, type HostArray, numel } from './dtype.js';
import type { Node } from './op.js';

/**
 * A tensor is either concrete (it holds host data: an eager value or a constant) or symbolic (an input of a
 * graph being traced, or the output of a node in it). Symbolic tensors know only shape and dtype; nothing is
 * computed while tracing.
 */
export type Source =
  | { kind: 'concrete'; data: HostArray }
  | { kind: 'input'; graph: Graph; name: string }
  | { kind: 'node'; graph: Graph; node: Node; index: number };

let nextId = 0;

export class Tensor {
  /** Creation order; within one graph, ids increase along any path, so sorting by id is a topological order. */
  readonly id = nextId++;
  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly source: Source,
  ) {}

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isConcrete(): boolean {
    return this.source.kind === 'concrete';
  }

  /** Host data of a concrete tensor. */
  get data(): HostArray {
    if (this.source.kind !== 'concrete') {
      throw new Error(
        `tensor ${this.describe()} is symbolic (being traced): its values exist only when the compiled function runs`,
      );
    }
    return this.source.data;
  }

  describe(): string {
    return `${this.dtype}[${this.shape.join(',')}]`;
  }
  toString(): string {
    return `Tensor(${this.describe()})`;
  }
}

/** What a graph input stands for: a caller-supplied value, or noise the runtime draws per call from the host RNG. */
export type InputRole = { kind: 'arg' } | { kind: 'random'; dist: NoiseDist };
/** Noise fed from the host RNG: float32 uniform [0, 1), float32 standard normal, or uint8 uniform bytes. */
export type NoiseDist = 'uniform' | 'normal' | 'bytes';

/** A traced function: inputs, the nodes in recording order (a topological order), and its outputs. */
export class Graph {
  readonly inputs: Tensor[] = [];
  readonly roles: InputRole[] = [];
  readonly nodes: Node[] = [];
  outputs: Tensor[] = [];

  addInput(shape: readonly number[], dtype: DType, role: InputRole = { kind: 'arg' }): Tensor {
    const t = new Tensor([...shape], dtype, { kind: 'input', graph: this, name: `in${this.inputs.length}` });
    this.inputs.push(t);
    this.roles.push(role);
    return t;
  }
}

let current: Graph | null = null;

/** The graph being traced, or null in eager mode. */
export function currentGraph(): Graph | null {
  return current;
}

/** Runs `fn` with `graph` as the tracing target (nested calls restore the outer one). */
export function withGraph<T>(graph: Graph | null, fn: () => T): T {
  const outer = current;
  current = graph;
  try {
    return fn();
  } finally {
    current = outer;
  }
}

export function concrete(data: HostArray, shape: readonly number[], dtype: DType): Tensor {
  if (data.length !== numel(shape))
    throw new Error(`concrete tensor: ${data.length} values for shape [${shape.join(',')}]`);
  return new Tensor([...shape], dtype, { kind: 'concrete', data });
}
