import { concrete, type Tensor } from '../engine/core.js';
import { parseSafetensors, type SafeTensor, serializeSafetensors } from '../io/safetensors.js';
import {
  fromBool,
  fromFloat32,
  fromFloat64,
  fromInt32,
  fromInt64,
  fromUint8,
  toBigInt64,
  toFloat32,
  toInt32,
} from '../io/tensor-data.js';

/**
 * Engine tensors ↔ safetensors, on bytes (no file access: a browser loads weights it fetched). Half-precision
 * tensors load as float32 (the engine computes in float32). Files on disk, and Modules saved and loaded by their
 * PyTorch-style names there, are ./weights-file.ts.
 */
export function fromSafe(t: SafeTensor, name = 'tensor'): Tensor {
  switch (t.dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
    case 'F64':
      return concrete(toFloat32(t), t.shape, 'float32');
    case 'I64':
      return concrete(toBigInt64(t), t.shape, 'int64');
    case 'I32':
    case 'I16':
    case 'I8':
      return concrete(toInt32(t, name), t.shape, 'int32');
    case 'U8':
      return concrete(Uint8Array.from(t.data), t.shape, 'uint8');
    case 'BOOL':
      return concrete(Uint8Array.from(t.data), t.shape, 'bool');
  }
}

export function toSafe(t: Tensor, half?: 'F16' | 'BF16'): SafeTensor {
  const shape = [...t.shape];
  switch (t.dtype) {
    case 'float32':
      return fromFloat32(t.data as Float32Array, shape, half ?? 'F32');
    case 'float64':
      return fromFloat64(t.data as Float64Array, shape);
    case 'int64':
      return fromInt64(t.data as BigInt64Array, shape);
    case 'int32':
      return fromInt32(t.data as Int32Array, shape);
    case 'uint8':
      return fromUint8(t.data as Uint8Array, shape);
    case 'bool':
      return fromBool(t.data as Uint8Array, shape);
    case 'float16':
      throw new Error('float16 engine tensors are not saved directly');
  }
}

/**
 * The tensors of a safetensors file held in memory (names kept), plus its metadata; with `prefix`, only the names
 * under it, the prefix removed. `file` names the source in errors.
 */
export function tensorsFromBytes(
  bytes: Uint8Array,
  opts: { prefix?: string; file?: string } = {},
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = parseSafetensors(bytes, opts.file);
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    if (opts.prefix && !name.startsWith(opts.prefix)) continue;
    out.set(opts.prefix ? name.slice(opts.prefix.length) : name, fromSafe(t, name));
  }
  return { tensors: out, metadata };
}

/** The safetensors bytes of `tensors`, as parts (header, then each tensor's data) to avoid one big copy. */
export function tensorsToBytes(
  tensors: Map<string, Tensor>,
  metadata?: Record<string, string>,
  half?: 'F16' | 'BF16',
): Uint8Array[] {
  const safe = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) safe.set(k, toSafe(t, t.dtype === 'float32' ? half : undefined));
  return serializeSafetensors(safe, metadata);
}
