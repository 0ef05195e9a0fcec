import { concrete, type Tensor } from '../../engine/core.js';

/**
 * Fixed sin-cos positions in the MAE convention, computed in float64 and stored as float32 like the reference's
 * numpy buffers: emb(p) = [sin(p·ω) | cos(p·ω)], ω_i = 1 / base^(i / (D/2)), i < D/2.
 */
export function sincos1d(dim: number, positions: number, base = 10000): Float64Array {
  if (dim % 2) throw new Error(`sin-cos positions need an even width, got ${dim}`);
  const half = dim / 2;
  const out = new Float64Array(positions * dim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * (1 / base ** (i / half));
      out[p * dim + i] = Math.sin(a);
      out[p * dim + half + i] = Math.cos(a);
    }
  }
  return out;
}

/**
 * 3-D positions for a t×h×w token grid in (t, h, w) row-major order: a 2-D MAE embedding [1-D(w) | 1-D(h)] (D/2
 * each) plus a full-width 1-D(t) embedding, summed. `base` is the reference's fixed 10000 unless a config sets
 * vtok's patch_pe_scale_factor (see config.ts).
 */
export function sincos3d(dim: number, t: number, h: number, w: number, base = 10000): Float64Array {
  const half = dim / 2;
  const ew = sincos1d(half, w, base),
    eh = sincos1d(half, h, base),
    et = sincos1d(dim, t, base);
  const out = new Float64Array(t * h * w * dim);
  for (let ti = 0; ti < t; ti++) {
    for (let hi = 0; hi < h; hi++) {
      for (let wi = 0; wi < w; wi++) {
        const o = ((ti * h + hi) * w + wi) * dim;
        for (let j = 0; j < dim; j++) {
          const spatial = j < half ? ew[wi * half + j]! : eh[hi * half + (j - half)]!;
          out[o + j] = et[ti * dim + j]! + spatial;
        }
      }
    }
  }
  return out;
}

/** A [1, n, dim] float32 buffer (from float64 or float32 values). */
export function asBuffer(values: ArrayLike<number>, dim: number): Tensor {
  return concrete(Float32Array.from(values), [1, values.length / dim, dim], 'float32');
}
