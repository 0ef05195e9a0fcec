import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import onnxProto from 'onnx-proto';
import { VtokError } from '../util/errors.js';
import type { DType } from '../engine/dtype.js';
import * as E from '../engine/core.js';
import { type Tensor, withGraph } from '../engine/tensor.js';
import { Attrs, type INode, num, tensorFromProto, typeOf } from './proto.js';
import { foldable, MAPPINGS, type NodeCtx, nodeLabel, staticValues, SUPPORTED_OPS } from './ops.js';

export { SUPPORTED_OPS };

const { onnx } = onnxProto;

/**
 * A differentiable ONNX importer. An .onnx file (a feature network for a perceptual loss, say) becomes a function
 * of engine tensors: its initializers become constants (frozen weights) and each node is mapped to engine ops, so
 * calling it inside a trace inlines the whole network into vtok's own graph, and reverse mode flows through it to
 * the inputs. Nodes that depend only on constants are evaluated once at import; shape computations (Shape → Gather
 * → Concat → Reshape, as exporters write them) are evaluated while tracing, since every engine shape is static.
 *
 * The network computes in float32: float16, bfloat16 and float64 initializers are converted. Ops the registry
 * lacks are compositions here (MaxPool = maxima of strided slices, AveragePool = a depthwise convolution with a
 * ones kernel). An op, attribute or opset outside what is mapped is a VtokError naming the node and its op type.
 *
 * This file reads the model and runs it; proto.ts decodes tensors and attributes, ops.ts
 * holds the op-by-op mappings.
 */

/** ai.onnx opsets whose semantics the mappings (ops.ts) follow (7: numpy broadcasting; 22: the newest checked). */
export const IMPORT_OPSETS = { min: 7, max: 22 } as const;

export interface OnnxValueInfo {
  name: string;
  dtype: DType;
  /** A number for a fixed dimension, the symbolic name (or null) for a free one; null shape = unknown rank. */
  shape: (number | string | null)[] | null;
}

// ---- the model ----

export interface ImportOptions {
  /** Name used in messages (default: the file path, or "<bytes>"). */
  name?: string;
  /**
   * Accept any size for the first (batch) dimension of the inputs even where the file fixes it (exporters that trace
   * with an example batch write it as fixed). A graph that really depends on it fails in the node that does.
   */
  anyBatch?: boolean;
}

/**
 * An imported ONNX network. `run` is ordinary engine code: call it on concrete tensors to evaluate eagerly, or inside
 * a traced function (a loss, a training step) to inline the network; gradients flow to its inputs.
 */
export class OnnxFunction {
  readonly opset: number;
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  /** The model's metadata_props. */
  readonly metadata: Record<string, string>;
  /** Number of frozen weight values (initializers). */
  readonly weightCount: number;
  private readonly nodes: INode[];
  private readonly labels: string[];
  private readonly constants = new Map<string, Tensor>();
  private readonly producer = new Map<string, number>();
  private readonly folded = new Set<number>();

  constructor(
    model: onnxProto.onnx.ModelProto,
    readonly file: string,
    private readonly baseDir: string | null,
    private readonly anyBatch = false,
  ) {
    const g = model.graph;
    if (!g) throw new VtokError('the model has no graph', file);
    let opset: number | undefined;
    for (const o of model.opsetImport ?? []) if (!o.domain || o.domain === 'ai.onnx') opset = num(o.version);
    if (opset === undefined) {
      if (num(model.irVersion) >= 3 || !(model.opsetImport ?? []).length)
        throw new VtokError('the model imports no ai.onnx opset', file);
      opset = 1;
    }
    if (opset < IMPORT_OPSETS.min || opset > IMPORT_OPSETS.max) {
      throw new VtokError(
        `ai.onnx opset ${opset} is not supported (the importer ` +
          `handles opsets ${IMPORT_OPSETS.min} to ${IMPORT_OPSETS.max})`,
        file,
      );
    }
    this.opset = opset;
    this.metadata = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    this.nodes = g.node ?? [];
    this.labels = this.nodes.map((n, i) => `node ${nodeLabel(n, i)} (${n.opType})`);

    // Every node must map before anything runs: report the first that does not.
    this.nodes.forEach((n, i) => {
      if (n.domain && n.domain !== 'ai.onnx')
        throw new VtokError(
          `${this.labels[i]}: domain "${n.domain}" is not supported (only the standard ai.onnx operators)`,
          file,
        );
      if (!MAPPINGS[n.opType ?? '']) {
        throw new VtokError(
          `${this.labels[i]}: op type ${n.opType} is not supported by ` +
            `the ONNX importer (supported: ${SUPPORTED_OPS.join(', ')})`,
          file,
        );
      }
      for (const o of n.output ?? []) if (o) this.producer.set(o, i);
    });
    if ((g.sparseInitializer ?? []).length) throw new VtokError('sparse initializers are not supported', file);

    let weights = 0;
    for (const t of g.initializer ?? []) {
      const name = t.name ?? '';
      const v = tensorFromProto(t, `initializer "${name}"`, file, baseDir);
      this.constants.set(name, v);
      if (v.dtype === 'float32') weights += v.size;
    }
    this.weightCount = weights;
    const info = (v: onnxProto.onnx.IValueInfoProto, what: string): OnnxValueInfo => {
      const tt = v.type?.tensorType;
      if (!tt) throw new VtokError(`${what} "${v.name}" is not a tensor`, file);
      const dims = tt.shape
        ? (tt.shape.dim ?? []).map((d) =>
            d.dimValue != null && num(d.dimValue) > 0 ? num(d.dimValue) : d.dimParam || null,
          )
        : null;
      return { name: v.name ?? '', dtype: typeOf(tt.elemType ?? 0, `${what} "${v.name}"`, file).dtype, shape: dims };
    };
    // Old exporters list the initializers among the inputs too.
    this.inputs = (g.input ?? []).filter((v) => !this.constants.has(v.name ?? '')).map((v) => info(v, 'input'));
    this.outputs = (g.output ?? []).map((v) => info(v, 'output'));
    for (const o of this.outputs) {
      if (!this.producer.has(o.name) && !this.constants.has(o.name) && !this.inputs.some((i) => i.name === o.name)) {
        throw new VtokError(`output "${o.name}" is produced by no node`, file);
      }
    }

    // Evaluate once the nodes that depend on constants only (weight reshapes, Constant nodes, folded statistics).
    this.nodes.forEach((n, i) => {
      const ins = n.input ?? [];
      if (ins.every((name) => !name || this.constants.has(name))) {
        const outs = withGraph(null, () =>
          this.apply(
            i,
            ins.map((name) => (name ? this.constants.get(name) : undefined)),
          ),
        );
        (n.output ?? []).forEach((o, k) => {
          if (o && outs[k]) this.constants.set(o, outs[k]);
        });
        this.folded.add(i);
      }
    });
  }

  /** The names every value in the graph has (inputs, initializers, node outputs), for `run`'s `outputs`. */
  valueNames(): string[] {
    return [...this.inputs.map((i) => i.name), ...this.constants.keys(), ...this.producer.keys()];
  }

  /**
   * Evaluates (or, inside a trace, inlines) the network. `inputs`: tensors in the order of `this.inputs`, or by
   * name. `outputs`: value names to return (default: the graph's outputs); any intermediate value may be named.
   */
  run(
    inputs: Tensor[] | Record<string, Tensor>,
    outputs: string[] = this.outputs.map((o) => o.name),
  ): Record<string, Tensor> {
    const values = new Map(this.constants);
    const given = Array.isArray(inputs)
      ? new Map(this.inputs.map((d, i) => [d.name, inputs[i]]))
      : new Map(Object.entries(inputs));
    if (Array.isArray(inputs) && inputs.length !== this.inputs.length) {
      throw new VtokError(
        `the network takes ${this.inputs.length} input(s) ` +
          `(${this.inputs.map((i) => i.name).join(', ')}), got ${inputs.length}`,
        this.file,
      );
    }
    for (const k of given.keys())
      if (!this.inputs.some((d) => d.name === k))
        throw new VtokError(
          `the network has no input "${k}" (inputs: ${this.inputs.map((i) => i.name).join(', ')})`,
          this.file,
        );
    for (const d of this.inputs) {
      const t = given.get(d.name);
      if (!t) throw new VtokError(`input "${d.name}" is missing`, this.file);
      const fits =
        t.dtype === d.dtype &&
        (!d.shape ||
          (d.shape.length === t.rank &&
            d.shape.every((s, i) => typeof s !== 'number' || s === t.shape[i] || (i === 0 && this.anyBatch))));
      if (!fits)
        throw new VtokError(
          `input "${d.name}" must be ${d.dtype}[${d.shape?.map((s) => s ?? '?').join(',') ?? '…'}], ` +
            `got ${t.describe()}`,
          this.file,
        );
      values.set(d.name, t);
    }
    // Only the nodes the requested outputs need.
    const need = new Set<number>();
    const stack = [...outputs];
    for (const o of outputs) {
      if (!values.has(o) && !this.producer.has(o))
        throw new VtokError(`the network has no value named "${o}"`, this.file);
    }
    while (stack.length) {
      const name = stack.pop()!;
      const i = this.producer.get(name);
      if (i === undefined || need.has(i) || this.folded.has(i)) continue;
      need.add(i);
      stack.push(...(this.nodes[i]!.input ?? []).filter((x) => x));
    }
    for (let i = 0; i < this.nodes.length; i++) {
      if (!need.has(i)) continue;
      const n = this.nodes[i]!;
      const ins = (n.input ?? []).map((name) => {
        if (!name) return undefined;
        const v = values.get(name);
        if (!v)
          throw new VtokError(
            `${this.labels[i]}: input "${name}" is not computed before it ` +
              '(the graph is not topologically sorted or names a missing value)',
            this.file,
          );
        return v;
      });
      const outs = foldable(
        ins.filter((t): t is Tensor => !!t),
        () => this.apply(i, ins),
      );
      (n.output ?? []).forEach((o, k) => {
        if (o && outs[k]) values.set(o, outs[k]);
      });
    }
    return Object.fromEntries(outputs.map((o) => [o, values.get(o)!]));
  }

  /** Runs node i's mapping; engine errors come back as VtokErrors naming the node. */
  private apply(i: number, inputs: (Tensor | undefined)[]): Tensor[] {
    const n = this.nodes[i]!;
    const where = () => this.labels[i]!;
    const c: NodeCtx = {
      node: n,
      opset: this.opset,
      inputs,
      file: this.file,
      baseDir: this.baseDir,
      attrs: new Attrs(n, where),
      input: (k) => inputs[k] ?? c.fail(`input ${k} is required`),
      ints: (k) => staticValues(c, k)?.map((v) => (Number.isFinite(v) ? Math.round(v) : v)),
      floats: (k) => staticValues(c, k),
      fail: (message) => {
        throw new VtokError(`${where()}: ${message}`, this.file);
      },
    };
    try {
      const outs = MAPPINGS[n.opType!]!(c);
      // Floats are computed in float32 whatever the file declared.
      return outs.map((t) => (t.dtype === 'float64' ? E.cast(t, 'float32') : t));
    } catch (e) {
      if (e instanceof VtokError) throw e;
      throw new VtokError(`${where()}: ${(e as Error).message}`, this.file);
    }
  }
}

/** Reads an ONNX model (a path or its bytes) into a traceable, differentiable function. */
export function importOnnx(source: string | Uint8Array, opts: ImportOptions = {}): OnnxFunction {
  const file = opts.name ?? (typeof source === 'string' ? source : '<bytes>');
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new VtokError(
        `cannot read the ONNX model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        file,
      );
    }
  } else bytes = source;
  if (bytes.length === 0) throw new VtokError('the ONNX model file is empty', file);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new VtokError(
      'not a valid ONNX model: the protobuf does not decode ' +
        `(${(e as Error).message}); is the file truncated or not ONNX?`,
      file,
    );
  }
  if (!model.graph || (!(model.graph.node ?? []).length && !(model.graph.output ?? []).length)) {
    throw new VtokError('not a valid ONNX model: it has no graph (is the file truncated or not ONNX?)', file);
  }
  return new OnnxFunction(model, file, typeof source === 'string' ? dirname(source) : null, opts.anyBatch);
}
