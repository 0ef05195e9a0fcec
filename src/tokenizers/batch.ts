import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import type { ClipTensor } from '../io/frame.js';
import { VtokError } from '../util/errors.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * Encoding and decoding many clips with a tokenizer, batch by batch, between host arrays: clips as one float
 * N×C×T×H×W array in [-1, 1] (ClipTensor), token ids as Int32Array row-major over [N, …grid]. int64 ids exist only
 * at the tokenizer's boundary (its graphs' dtype). Every batch has the same size (the last one padded with zeros
 * and trimmed), so a run compiles one program per direction.
 */
export interface HostTokens {
  /** Ids row-major over [n, …grid]. */
  ids: Int32Array;
  n: number;
  /** Token grid of one clip. */
  grid: number[];
}

/** Token ids of a tensor (int32 or int64) as host Int32Array. */
export function idsToHost(ids: Tensor): Int32Array {
  if (ids.dtype === 'int32') return Int32Array.from(ids.data as Int32Array);
  if (ids.dtype === 'int64') return Int32Array.from(ids.data as BigInt64Array, Number);
  throw new VtokError(`token ids must be int32 or int64, got ${ids.dtype}`);
}

/** Host ids [n, …grid] as the int64 tensor tokenizers decode. */
export function idsToTensor(ids: Int32Array, shape: number[]): Tensor {
  return E.concrete(
    BigInt64Array.from(ids, (v) => BigInt(v)),
    shape,
    'int64',
  );
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function encodeClips(tok: Tokenizer, clips: ClipTensor, batchSize = clips.shape[0]): HostTokens {
  if (clips.shape.length !== 5) throw new VtokError(`encode: expected clips N×C×T×H×W, got [${clips.shape}]`);
  if (!(batchSize >= 1)) throw new VtokError(`encode: batch size must be at least 1, got ${batchSize}`);
  const [n, ...clip] = clips.shape;
  const grid = tok.grid(clip).shape;
  const per = size(clip),
    perClip = size(grid);
  const out = new Int32Array(n * perClip);
  for (let s = 0; s < n; s += batchSize) {
    const rows = Math.min(batchSize, n - s);
    const part = clips.data.subarray(s * per, (s + rows) * per);
    const ids = idsToHost(
      tok.encode(
        E.concrete(rows === batchSize ? part : padded(part, batchSize * per), [batchSize, ...clip], 'float32'),
      ),
    );
    if (ids.length !== batchSize * perClip)
      throw new VtokError(
        `${tok.kind}: encode gave ${ids.length / batchSize} ids per clip, its grid [${grid}] has ${perClip}`,
      );
    out.set(ids.subarray(0, rows * perClip), s * perClip);
  }
  return { ids: out, n, grid };
}

export function decodeTokens(tok: Tokenizer, tokens: HostTokens, batchSize = tokens.n): ClipTensor {
  const { ids, n, grid } = tokens;
  const per = size(grid);
  if (ids.length !== n * per) throw new VtokError(`decode: ${ids.length} ids for ${n} clips of grid [${grid}]`);
  if (!(batchSize >= 1)) throw new VtokError(`decode: batch size must be at least 1, got ${batchSize}`);
  let out: Float32Array | null = null;
  let clip: number[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const rows = Math.min(batchSize, n - s);
    const chunk =
      rows === batchSize
        ? ids.subarray(s * per, (s + rows) * per)
        : paddedIds(ids.subarray(s * per, (s + rows) * per), batchSize * per);
    const video = tok.decode(idsToTensor(chunk, [batchSize, ...grid]));
    const perClip = video.size / batchSize;
    if (!out) {
      out = new Float32Array(n * perClip);
      clip = video.shape.slice(1);
    }
    out.set((video.data as Float32Array).subarray(0, rows * perClip), s * perClip);
  }
  return { data: out ?? new Float32Array(0), shape: [n, ...clip] as ClipTensor['shape'] };
}

function padded(data: Float32Array, length: number): Float32Array {
  const out = new Float32Array(length);
  out.set(data);
  return out;
}

function paddedIds(data: Int32Array, length: number): Int32Array {
  const out = new Int32Array(length);
  out.set(data);
  return out;
}
