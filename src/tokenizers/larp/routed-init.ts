import { Matrix, pseudoInverse } from 'ml-matrix';
import { concrete, toArray } from '../../engine/core.js';
import type { Block } from './vit.js';
import { Rng } from '../../util/rng.js';

/**
 * vtok's routed initialisation of LARP's holistic path (config key `routed_init_gain`; docs/larp-small-scale.md
 * says why it exists and what it changes).
 *
 * A holistic tokenizer starts with near-uniform attention: every holistic query reads the average of all patches,
 * every decoder patch query reads the average of all latents, and both sides must specialise together before any
 * patch-specific content gets through. Routed init starts the path already routed, as a per-patch autoencoder:
 * holistic query i reads patch π(i) in the encoder's first block, decoder patch query j reads latent π'(j) in the
 * decoder's first block. Only the initial weights change (the fixed positions and two q projections); the
 * architecture, losses and everything learned afterwards are LARP's, so the queries remain free to gather global
 * information as training goes on.
 */

/** Fixed random positions: `rows` Gaussian rows of width `dim`, each scaled to the norm of a sin-cos row, √(dim/2). */
export function randomPositions(rows: number, dim: number, seed: number): Float32Array {
  const a = new Rng(seed).normal(rows * dim);
  const target = Math.sqrt(dim / 2);
  for (let r = 0; r < rows; r++) {
    const row = a.subarray(r * dim, (r + 1) * dim);
    const norm = Math.hypot(...row);
    for (let c = 0; c < dim; c++) row[c]! *= target / norm;
  }
  return a;
}

/** Which row of `to` (of `m`) reader i (of `k`) is routed to: readers spread evenly over the rows. */
export const routeOf = (i: number, k: number, m: number): number => Math.floor((i * m) / k);

/**
 * Sets the q and k projections of an attention block so that reader i's query is gain·t_i and every key is
 * gain·(its normalised input): the attention logit of reader i on a token whose normalised input is close to t_i is
 * then gain²·d/√(head dim) summed over the heads, against about gain²·√d for unrelated tokens.
 *
 * `readers` are the readers' normalised inputs u_i (k rows), `targets` the rows t_i they should match. W_q solves
 * W_q u_i = t_i for every i (least squares where k exceeds the rank): W_q = Tᵀ · pinv(Uᵀ). W_k = gain·I. W_v stays.
 */
export function routeBlock(block: Block, readers: ArrayLike<number>, targets: ArrayLike<number>, gain: number): void {
  const w = block.attn.qkv.weight;
  const d = w.shape[1]!;
  const k = readers.length / d;
  const U = new Matrix(k, d),
    T = new Matrix(k, d);
  for (let i = 0; i < k; i++) {
    for (let c = 0; c < d; c++) {
      U.set(i, c, readers[i * d + c]!);
      T.set(i, c, gain * targets[i * d + c]!);
    }
  }
  const wq = T.transpose().mmul(pseudoInverse(U.transpose())); // d × d
  const a = Float32Array.from(toArray(w.value) as ArrayLike<number>);
  for (let r = 0; r < d; r++) {
    for (let c = 0; c < d; c++) {
      a[r * d + c] = wq.get(r, c);
      a[(d + r) * d + c] = r === c ? gain : 0;
    }
  }
  w.value = concrete(a, w.shape, 'float32');
}

/** The rows of `source` (n rows of width d) picked for each of k readers by routeOf. */
export function pickRows(source: ArrayLike<number>, dim: number, readers: number): Float64Array {
  const n = source.length / dim;
  const out = new Float64Array(readers * dim);
  for (let i = 0; i < readers; i++) {
    const r = routeOf(i, readers, n);
    for (let c = 0; c < dim; c++) out[i * dim + c] = source[r * dim + c]!;
  }
  return out;
}
