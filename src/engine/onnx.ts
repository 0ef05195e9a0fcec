import onnxProto from 'onnx-proto';
import { BYTES, type DType, ONNX_DTYPE } from './dtype.js';
import { type Attr, type LowerCtx, type Node, operands } from './op.js';
import type { Graph, Tensor } from './tensor.js';

const { onnx } = onnxProto;

/** ONNX opset the lowering targets: 21 has Reduce* with axes inputs, ScatterElements reductions and Gelu. */
export const OPSET = 21;
const IR_VERSION = 10;

/**
 * Lowers a traced graph to an ONNX ModelProto: graph inputs in order, concrete tensors as initializers, each
 * node through its op's `lower`, and only the nodes the outputs need (dead code is dropped here).
 */
export function lowerToOnnx(
  graph: Graph,
  opts: { name?: string; inputNames?: string[]; outputNames?: string[] } = {},
): Uint8Array {
  const names = new Map<Tensor, string>();
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const constCache = new Map<string, string>();
  let counter = 0;

  graph.inputs.forEach((t, i) => {
    names.set(t, opts.inputNames?.[i] ?? `in${i}`);
  });

  const ctx: LowerCtx = {
    emit(opType, inputs, outputs, attrs = {}, domain) {
      nodes.push({
        opType,
        input: inputs,
        output: outputs,
        domain: domain ?? '',
        name: `${opType}_${nodes.length}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      });
    },
    fresh: (hint = 'v') => `${hint}_${counter++}`,
    i64(values, shape) {
      // The shape is part of the key: a scalar [] and a one-element list [1] of the same value are different constants.
      const key = `i64:${JSON.stringify(shape ?? [values.length])}:${values.join(',')}`;
      let name = constCache.get(key);
      if (!name) {
        name = `c${constCache.size}`;
        constCache.set(key, name);
        initializers.push(
          tensorProto(name, 'int64', shape ?? [values.length], BigInt64Array.from(values.map((v) => BigInt(v)))),
        );
      }
      return name;
    },
    scalar(value, dtype) {
      const key = `s:${dtype}:${value}`;
      let name = constCache.get(key);
      if (!name) {
        name = `c${constCache.size}`;
        constCache.set(key, name);
        initializers.push(tensorProto(name, dtype, [], encodeValues(dtype, [value])));
      }
      return name;
    },
  };

  const nameOf = (t: Tensor): string => {
    let n = names.get(t);
    if (n) return n;
    if (t.source.kind !== 'concrete') throw new Error(`internal: tensor ${t.describe()} has no name`);
    n = `k${t.id}`;
    names.set(t, n);
    initializers.push(tensorProto(n, t.dtype, t.shape, t.source.data));
    return n;
  };

  // Liveness: walk back from the outputs.
  const live = new Set<Node>();
  const stack = [...graph.outputs];
  while (stack.length) {
    const t = stack.pop()!;
    if (t.source.kind !== 'node' || live.has(t.source.node)) continue;
    live.add(t.source.node);
    stack.push(...t.source.node.inputs);
  }

  // Graph outputs need their own names. A node's result is named so directly (its first time in the outputs): an
  // Identity there would cost a full copy whenever the value is also used inside the graph (onnxruntime removes
  // the others), e.g. the Adam moments of a training step. Inputs, constants and repeats go through Identity.
  const outputNames = graph.outputs.map((_, i) => opts.outputNames?.[i] ?? `out${i}`);
  const direct = new Map<Tensor, string>();
  graph.outputs.forEach((t, i) => {
    if (t.source.kind === 'node' && !direct.has(t)) direct.set(t, outputNames[i]!);
  });

  for (const node of graph.nodes) {
    if (!live.has(node)) continue;
    const ins = node.inputs.map(nameOf);
    const outs = node.outputs.map((o) => {
      const n = direct.get(o) ?? `t${o.id}`;
      names.set(o, n);
      return n;
    });
    node.op.lower(ctx, operands(ins), operands(outs), node.attrs, node);
  }

  graph.outputs.forEach((t, i) => {
    if (nameOf(t) !== outputNames[i]) ctx.emit('Identity', [nameOf(t)], [outputNames[i]!]);
  });

  const valueInfo = (name: string, t: Tensor): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[t.dtype], shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } },
  });

  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'vtok',
    opsetImport: [
      { domain: '', version: OPSET },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph: {
      name: opts.name ?? 'vtok',
      node: nodes,
      initializer: initializers,
      input: graph.inputs.map((t) => valueInfo(names.get(t)!, t)),
      output: graph.outputs.map((t, i) => valueInfo(outputNames[i]!, t)),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function attribute(name: string, v: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}=${v}: tag floats with {float: v}`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return {
    name,
    type: T.TENSOR,
    t: tensorProto('', v.tensor.dtype, v.tensor.dims, encodeValues(v.tensor.dtype, v.tensor.values)),
  };
}

function encodeValues(dtype: DType, values: number[]): ArrayBufferView {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values.map((v) => (dtype === 'bool' ? (v ? 1 : 0) : v)));
    case 'float16':
      throw new Error('float16 constants are not supported in lowering yet');
  }
}

function tensorProto(
  name: string,
  dtype: DType,
  dims: readonly number[],
  data: ArrayBufferView,
): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (raw.length !== dims.reduce((a, b) => a * b, 1) * BYTES[dtype])
    throw new Error(`initializer ${name}: data does not fit its shape`);
  return { name, dataType: ONNX_DTYPE[dtype], dims: [...dims], rawData: raw };
}
