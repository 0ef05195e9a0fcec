import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { VtokError } from '../util/errors.js';
import { type DType, numel } from '../engine/dtype.js';
import * as E from '../engine/core.js';
import { concrete, type Tensor } from '../engine/tensor.js';

/** The ONNX importer's protobuf side: initializer and Constant tensors as engine tensors, and typed node attributes. */
const { onnx } = onnxProto;

export type IAttr = onnxProto.onnx.IAttributeProto;
export type INode = onnxProto.onnx.INodeProto;
export type ITensor = onnxProto.onnx.ITensorProto;
export type Long = { toNumber(): number };

export const num = (v: number | Long | null | undefined): number =>
  v == null ? 0 : typeof v === 'number' ? v : v.toNumber();

/** ONNX TensorProto.DataType → the engine dtype a value of that type is held in, and how its bytes decode. */
export const ONNX_TYPES: Record<
  number,
  { name: string; dtype: DType; bytes: number; read: (v: DataView, o: number) => number | bigint }
> = {
  1: { name: 'float', dtype: 'float32', bytes: 4, read: (v, o) => v.getFloat32(o, true) },
  2: { name: 'uint8', dtype: 'uint8', bytes: 1, read: (v, o) => v.getUint8(o) },
  3: { name: 'int8', dtype: 'int32', bytes: 1, read: (v, o) => v.getInt8(o) },
  4: { name: 'uint16', dtype: 'int32', bytes: 2, read: (v, o) => v.getUint16(o, true) },
  5: { name: 'int16', dtype: 'int32', bytes: 2, read: (v, o) => v.getInt16(o, true) },
  6: { name: 'int32', dtype: 'int32', bytes: 4, read: (v, o) => v.getInt32(o, true) },
  7: { name: 'int64', dtype: 'int64', bytes: 8, read: (v, o) => v.getBigInt64(o, true) },
  9: { name: 'bool', dtype: 'bool', bytes: 1, read: (v, o) => (v.getUint8(o) ? 1 : 0) },
  10: { name: 'float16', dtype: 'float32', bytes: 2, read: (v, o) => halfToFloat(v.getUint16(o, true)) },
  11: { name: 'double', dtype: 'float32', bytes: 8, read: (v, o) => v.getFloat64(o, true) },
  12: { name: 'uint32', dtype: 'int64', bytes: 4, read: (v, o) => BigInt(v.getUint32(o, true)) },
  13: { name: 'uint64', dtype: 'int64', bytes: 8, read: (v, o) => BigInt.asIntN(64, v.getBigUint64(o, true)) },
  16: { name: 'bfloat16', dtype: 'float32', bytes: 2, read: (v, o) => bf16ToFloat(v.getUint16(o, true)) },
};

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function bf16ToFloat(b: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, b << 16, false);
  return v.getFloat32(0, false);
}

export function typeOf(code: number, what: string, file: string): (typeof ONNX_TYPES)[number] {
  const t = ONNX_TYPES[code];
  if (!t)
    throw new VtokError(
      `${what} has ONNX element type ${code}, which the importer does not ` +
        'handle (float, float16, bfloat16, double, int8-64, uint8-64, bool)',
      file,
    );
  return t;
}

/** A TensorProto (initializer or Constant value) as a concrete engine tensor. */
export function tensorFromProto(t: ITensor, what: string, file: string, baseDir: string | null): Tensor {
  const type = typeOf(t.dataType ?? 0, what, file);
  const dims = (t.dims ?? []).map(num);
  const n = numel(dims);
  if (t.segment) throw new VtokError(`${what} is a segmented tensor, which the importer does not handle`, file);
  let raw = t.rawData?.length ? t.rawData : null;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const ext = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = ext.get('location');
    if (!location) throw new VtokError(`${what} is stored externally but names no location`, file);
    if (!baseDir)
      throw new VtokError(
        `${what} is stored in the external file "${location}": import the model from its path, not from bytes`,
        file,
      );
    const path = isAbsolute(location) ? location : join(baseDir, location);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new VtokError(`${what}: cannot read its external data file`, path);
    }
    const offset = Number(ext.get('offset') ?? 0),
      length = ext.has('length') ? Number(ext.get('length')) : n * type.bytes;
    if (offset + length > bytes.length)
      throw new VtokError(
        `${what}: the external data file is shorter than offset ${offset} + length ${length} (truncated?)`,
        path,
      );
    raw = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
  }
  const out = E.zeros(dims, type.dtype).data as Float32Array | Int32Array | BigInt64Array | Uint8Array;
  const put = (i: number, v: number | bigint) => {
    if (out instanceof BigInt64Array) out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
    else out[i] = Number(v);
  };
  let count: number;
  if (raw) {
    count = raw.length / type.bytes;
    if (count === n) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < n; i++) put(i, type.read(view, i * type.bytes));
    }
  } else {
    const code = t.dataType!;
    // Typed fields: float16/bfloat16 and the small integer types travel as int32 (their bit patterns for 16-bit
    // floats).
    let src: ArrayLike<number | Long>;
    let conv: (v: number | Long) => number | bigint = (v) => num(v);
    if (code === 1) src = t.floatData ?? [];
    else if (code === 11) src = t.doubleData ?? [];
    else if (code === 7) {
      src = t.int64Data ?? [];
      conv = (v) => (typeof v === 'number' ? BigInt(v) : BigInt((v as unknown as { toString(): string }).toString()));
    } else if (code === 12 || code === 13) src = t.uint64Data ?? [];
    else if (code === 10) {
      src = t.int32Data ?? [];
      conv = (v) => halfToFloat(num(v));
    } else if (code === 16) {
      src = t.int32Data ?? [];
      conv = (v) => bf16ToFloat(num(v));
    } else src = t.int32Data ?? [];
    count = src.length;
    if (count === n) for (let i = 0; i < n; i++) put(i, conv(src[i]!));
  }
  if (count !== n)
    throw new VtokError(`${what} holds ${count} values for shape [${dims.join(',')}] (${n} expected)`, file);
  return concrete(out, dims, type.dtype);
}

// ---- attributes ----

export class Attrs {
  private readonly map: Map<string, IAttr>;
  constructor(
    node: INode,
    private readonly where: () => string,
  ) {
    this.map = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  private get(name: string, type: number, typeName: string): IAttr | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    if (a.refAttrName)
      throw new VtokError(
        `${this.where()}: attribute ${name} refers to a function attribute, which the importer does not handle`,
      );
    if (a.type !== type) throw new VtokError(`${this.where()}: attribute ${name} should be ${typeName}`);
    return a;
  }
  int(name: string, dflt: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INT, 'an int');
    return a ? num(a.i) : dflt;
  }
  ints(name: string): number[] | undefined {
    const a = this.get(name, onnx.AttributeProto.AttributeType.INTS, 'a list of ints');
    return a ? (a.ints ?? []).map(num) : undefined;
  }
  float(name: string, dflt: number): number {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOAT, 'a float');
    return a ? (a.f ?? 0) : dflt;
  }
  floats(name: string): number[] | undefined {
    const a = this.get(name, onnx.AttributeProto.AttributeType.FLOATS, 'a list of floats');
    return a ? [...(a.floats ?? [])] : undefined;
  }
  string(name: string, dflt: string): string {
    const a = this.get(name, onnx.AttributeProto.AttributeType.STRING, 'a string');
    return a ? new TextDecoder().decode(a.s ?? new Uint8Array()) : dflt;
  }
  tensor(name: string): ITensor | undefined {
    return this.get(name, onnx.AttributeProto.AttributeType.TENSOR, 'a tensor')?.t ?? undefined;
  }
  /** Only these attributes may appear (others would change the meaning silently). */
  only(...names: string[]): void {
    for (const k of this.map.keys())
      if (!names.includes(k)) throw new VtokError(`${this.where()}: attribute "${k}" is not supported`);
  }
}
