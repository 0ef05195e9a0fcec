import onnxProto from 'onnx-proto';
import { Rng } from '../../src/util/rng.js';

/** A small hand-writer of ONNX models (onnx-proto), for importer tests: nodes, float initializers, metadata. */
const { onnx } = onnxProto;
const T = onnx.AttributeProto.AttributeType;

export type AttrValue =
  | number
  | number[]
  | string
  | { f: number }
  | { fs: number[] }
  | { t: onnxProto.onnx.ITensorProto };

export function attr(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('f' in v) return { name, type: T.FLOAT, f: v.f };
  if ('fs' in v) return { name, type: T.FLOATS, floats: v.fs };
  return { name, type: T.TENSOR, t: v.t };
}

export function node(
  opType: string,
  input: string[],
  output: string[],
  attrs: Record<string, AttrValue> = {},
  name?: string,
): onnxProto.onnx.INodeProto {
  return {
    opType,
    input,
    output,
    name: name ?? `${opType}_${output[0]}`,
    attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
  };
}

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): onnxProto.onnx.ITensorProto {
  const data = Float32Array.from(values);
  return { name, dataType: 1, dims, rawData: new Uint8Array(data.buffer) };
}

export function int64Tensor(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dataType: 7, dims, rawData: new Uint8Array(data.buffer) };
}

export class ModelBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly inits: onnxProto.onnx.ITensorProto[] = [];
  readonly outputs: string[] = [];
  private readonly rng: Rng;
  constructor(seed = 1) {
    this.rng = new Rng(seed);
  }

  /** A random float initializer (normal, std). */
  weight(name: string, dims: number[], std = 0.3, mean = 0): string {
    const n = dims.reduce((a, b) => a * b, 1);
    this.inits.push(floatTensor(name, dims, this.rng.normal(n, mean, std)));
    return name;
  }

  /** A float initializer with given values. */
  floats(name: string, dims: number[], values: number[]): string {
    this.inits.push(floatTensor(name, dims, values));
    return name;
  }

  ints(name: string, values: number[], dims = [values.length]): string {
    this.inits.push(int64Tensor(name, dims, values));
    return name;
  }

  /** Appends a node; returns its first output's name. `out` marks it as a graph output. */
  op(
    opType: string,
    input: string[],
    output: string | string[],
    attrs: Record<string, AttrValue> = {},
    out = false,
  ): string {
    const outs = typeof output === 'string' ? [output] : output;
    this.nodes.push(node(opType, input, outs, attrs));
    if (out) this.outputs.push(...outs.filter((o) => o));
    return outs[0]!;
  }

  build(inputs: [string, number[]][], opset: number, metadata: Record<string, string> = {}): Uint8Array {
    const vi = (name: string, dims?: number[]): onnxProto.onnx.IValueInfoProto => ({
      name,
      type: { tensorType: { elemType: 1, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } },
    });
    const model = onnx.ModelProto.create({
      irVersion: opset >= 21 ? 10 : opset >= 15 ? 8 : 6,
      producerName: 'vtok-test',
      opsetImport: [{ domain: '', version: opset }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: 'g',
        node: this.nodes,
        initializer: this.inits,
        input: inputs.map(([n, d]) => vi(n, d)),
        output: this.outputs.map((o) => vi(o)),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
