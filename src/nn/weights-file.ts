import type { Tensor } from '../engine/core.js';
import { openSafetensors } from '../io/safetensors-file.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError } from '../util/errors.js';
import type { Module } from './module.js';
import { fromSafe, tensorsToBytes } from './weights.js';

/**
 * Engine tensors and Modules in safetensors files, by their PyTorch-style names. Tensors are read one at a time
 * from their offsets (src/io/safetensors-file.ts) and converted before the next is read, so a file is never held
 * whole; files are written atomically.
 */

/** Reads every tensor of a safetensors file (names kept), plus its metadata; `prefix` as in tensorsFromBytes. */
export function loadTensors(
  path: string,
  opts: { prefix?: string } = {},
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const f = openSafetensors(path);
  try {
    const out = new Map<string, Tensor>();
    for (const name of f.tensors.keys()) {
      if (opts.prefix && !name.startsWith(opts.prefix)) continue;
      out.set(opts.prefix ? name.slice(opts.prefix.length) : name, fromSafe(f.read(name), name));
    }
    return { tensors: out, metadata: f.metadata };
  } finally {
    f.close();
  }
}

export function saveTensors(
  path: string,
  tensors: Map<string, Tensor>,
  metadata?: Record<string, string>,
  half?: 'F16' | 'BF16',
): void {
  writeFileAtomic(path, tensorsToBytes(tensors, metadata, half));
}

/** Saves a module's parameters and buffers under their dotted names (atomically). */
export function saveModule(path: string, module: Module, metadata?: Record<string, string>): void {
  saveTensors(path, module.stateDict(), metadata);
}

/**
 * Loads a module's weights from a safetensors file by name; `prefix` selects a sub-tree (e.g. "param." in the
 * golden files). Missing, unexpected and mis-shaped keys are reported together, naming the file.
 */
export function loadModule(
  path: string,
  module: Module,
  opts: { strict?: boolean; prefix?: string } = {},
): { missing: string[]; unexpected: string[] } {
  const { tensors } = loadTensors(path, { prefix: opts.prefix });
  if (tensors.size === 0) throw new VtokError(`no tensors${opts.prefix ? ` under "${opts.prefix}"` : ''}`, path);
  return module.loadStateDict(tensors, { strict: opts.strict, source: path });
}
