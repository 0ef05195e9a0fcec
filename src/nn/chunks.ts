import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';

/**
 * Flat parameter chunks for the chunked training step (src/nn/step.ts). Parameters (and their gradients,
 * optimizer slots and EMA weights) are packed into a few flat vectors of one common length, so the optimizer
 * update is a single compiled program run once per chunk: onnxruntime's arena then reuses its buffers from run to
 * run instead of mapping fresh pages for every intermediate (which made a per-tensor update ~1.5× slower). After
 * the first update every tensor is a view into its chunk's flat output, so packing costs nothing from then on.
 */
export interface Chunk {
  /** Parameter indices, in their order inside the flat vector. */
  idx: number[];
  /** Length of the flat vector (≥ the parameters' total; the rest is zeros). */
  len: number;
}

/**
 * First-fit decreasing: groups whose sizes add up to at most `limit` (an item larger than `limit` goes alone).
 * Every group is padded to `limit` except the least filled, which keeps its exact size — at most two programs.
 */
export function packChunks(sizes: number[], limit: number): Chunk[] {
  const order = sizes.map((_, i) => i).sort((a, b) => sizes[b]! - sizes[a]! || a - b);
  const groups: { idx: number[]; total: number }[] = [];
  for (const i of order) {
    const g = groups.find((c) => c.total + sizes[i]! <= limit);
    if (g) {
      g.idx.push(i);
      g.total += sizes[i]!;
    } else groups.push({ idx: [i], total: sizes[i]! });
  }
  let least = -1;
  groups.forEach((g, k) => {
    if (g.total <= limit && (least < 0 || g.total < groups[least]!.total)) least = k;
  });
  return groups.map((g, k) => ({ idx: g.idx, len: g.total > limit || k === least ? g.total : limit }));
}

/**
 * The tensors as one flat float32 tensor of `len` values: their own buffer when they already are consecutive views
 * from the start of one buffer of that length (what viewsOf made last step; the tail past them is the padding, which
 * an elementwise optimizer keeps at zero: zero weights, gradients and slots update to zero), otherwise a copy,
 * zero-padded.
 */
export function flatOf(tensors: Tensor[], len: number): Tensor {
  const first = tensors[0]!.data as Float32Array;
  let offset = 0;
  const shared =
    first.buffer.byteLength === 4 * len &&
    tensors.every((t) => {
      const d = t.data as Float32Array;
      const ok = d.buffer === first.buffer && d.byteOffset === offset;
      offset += d.byteLength;
      return ok;
    });
  if (shared) return E.concrete(new Float32Array(first.buffer, 0, len), [len], 'float32');
  const out = new Float32Array(len);
  let o = 0;
  for (const t of tensors) {
    out.set(t.data as Float32Array, o);
    o += t.size;
  }
  return E.concrete(out, [len], 'float32');
}

/** Views of a flat vector as tensors of the given shapes, in order (no copy). */
export function viewsOf(flat: Tensor, shapes: readonly (readonly number[])[]): Tensor[] {
  const data = flat.data as Float32Array;
  let o = 0;
  return shapes.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    const v = E.concrete(data.subarray(o, o + n), s, 'float32');
    o += n;
    return v;
  });
}

/** Graph code: the tensors flattened and concatenated, zero-padded to `len` (the gradient side of flatOf). */
export function concatFlat(tensors: Tensor[], len: number): Tensor {
  const flat = E.concat(
    tensors.map((t) => E.reshape(t, [t.size])),
    0,
  );
  return flat.size === len ? flat : E.pad(flat, [[0, len - flat.size]]);
}
