import { concrete, type Tensor } from '../engine/index.js';
import {
  fromBool, fromFloat32, fromFloat64, fromInt32, fromInt64, fromUint8, readSafetensors, type SafeTensor, toBigInt64, toFloat32, toInt32,
  writeSafetensors,
} from '../io/safetensors.js';
import { VtokError } from '../util/errors.js';
import type { Module } from './module.js';

/**
 * Engine tensors ↔ safetensors, and Modules saved and loaded by their PyTorch-style names. Half-precision files
 * load as float32 (the engine computes in float32).
 */
export function fromSafe(t: SafeTensor, name = 'tensor'): Tensor {
  switch (t.dtype) {
    case 'F32': case 'F16': case 'BF16': case 'F64':
      return concrete(toFloat32(t), t.shape, 'float32');
    case 'I64':
      return concrete(toBigInt64(t), t.shape, 'int64');
    case 'I32': case 'I16': case 'I8':
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
    case 'float32': return fromFloat32(t.data as Float32Array, shape, half ?? 'F32');
    case 'float64': return fromFloat64(t.data as Float64Array, shape);
    case 'int64': return fromInt64(t.data as BigInt64Array, shape);
    case 'int32': return fromInt32(t.data as Int32Array, shape);
    case 'uint8': return fromUint8(t.data as Uint8Array, shape);
    case 'bool': return fromBool(t.data as Uint8Array, shape);
    case 'float16': throw new Error('float16 engine tensors are not saved directly');
  }
}

/** Reads every tensor of a safetensors file (names kept), plus its metadata. */
export function loadTensors(path: string, opts: { prefix?: string } = {}): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(path);
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    if (opts.prefix && !name.startsWith(opts.prefix)) continue;
    out.set(opts.prefix ? name.slice(opts.prefix.length) : name, fromSafe(t, name));
  }
  return { tensors: out, metadata };
}

export function saveTensors(path: string, tensors: Map<string, Tensor>, metadata?: Record<string, string>, half?: 'F16' | 'BF16'): void {
  const safe = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) safe.set(k, toSafe(t, t.dtype === 'float32' ? half : undefined));
  writeSafetensors(path, safe, metadata);
}

/** Saves a module's parameters and buffers under their dotted names (atomically). */
export function saveModule(path: string, module: Module, metadata?: Record<string, string>): void {
  saveTensors(path, module.stateDict(), metadata);
}

/**
 * Loads a module's weights from a safetensors file by name; `prefix` selects a sub-tree (e.g. "param." in the
 * golden files). Missing, unexpected and mis-shaped keys are reported together, naming the file.
 */
export function loadModule(path: string, module: Module, opts: { strict?: boolean; prefix?: string } = {}): { missing: string[]; unexpected: string[] } {
  const { tensors } = loadTensors(path, { prefix: opts.prefix });
  if (tensors.size === 0) throw new VtokError(`no tensors${opts.prefix ? ` under "${opts.prefix}"` : ''}`, path);
  return module.loadStateDict(tensors, { strict: opts.strict, source: path });
}
