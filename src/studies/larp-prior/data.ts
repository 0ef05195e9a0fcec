import type { Batch } from '../../data/dataset.js';
import { createLoader } from '../../data/loader.js';
import type { DatasetSpec } from '../../data/open.js';
import type { ClipTensor } from '../../io/frame.js';
import { check } from '../../util/errors.js';
import type { StudyBudget } from './budget.js';

/**
 * The study's data: synthetic clips labelled by motion (straight-line motion, no bounces), train and held-out seeds.
 */
export function dataSpec(b: StudyBudget, split: 'train' | 'held', seed: number): DatasetSpec {
  return {
    kind: 'synthetic',
    labelBy: 'motion',
    frames: b.frames,
    height: b.size,
    width: b.size,
    length: split === 'train' ? b.trainClips : b.heldClips,
    seed: split === 'train' ? seed : seed + 1,
  };
}

/** Every clip of a split, in order, batch by batch. */
export async function* clipBatches(spec: DatasetSpec, batchSize: number, limit = Infinity): AsyncGenerator<Batch> {
  const loader = await createLoader(spec, { batchSize, shuffle: false, epochs: 1 });
  let n = 0;
  try {
    for await (const b of loader) {
      yield b;
      n += b.shape[0];
      if (n >= limit) break;
    }
  } finally {
    await loader.close();
  }
}

export async function heldOutClips(b: StudyBudget, seed: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const batch of clipBatches(dataSpec(b, 'held', seed), 64)) out.push(batch);
  return out;
}

/** Concatenates the first `n` clips of batches into one N×C×T×H×W array. */
export function firstClips(batches: Batch[], n: number): ClipTensor {
  const [, C, T, H, W] = batches[0]!.shape;
  const per = C * T * H * W;
  const data = new Float32Array(n * per);
  let k = 0;
  for (const b of batches) {
    const take = Math.min(b.shape[0], n - k);
    data.set(b.data.subarray(0, take * per), k * per);
    k += take;
    if (k >= n) break;
  }
  check(k === n, `need ${n} clips, have ${k}`);
  return { data, shape: [n, C, T, H, W] };
}

/**
 * Mean squared error (in 8-bit units) of replacing every t×h×w block of each channel of each clip by the block's mean:
 * the error of the best reconstruction that keeps only the mean colour per block.
 */
export function blockMeanMse(clips: ClipTensor, block: readonly [number, number, number]): number {
  const [n, c, T, H, W] = clips.shape as [number, number, number, number, number];
  const [bt, bh, bw] = block;
  check(T % bt === 0 && H % bh === 0 && W % bw === 0, `block ${block.join('×')} does not tile ${T}×${H}×${W} clips`);
  let se = 0;
  for (let k = 0; k < n * c; k++) {
    const base = k * T * H * W;
    for (let t0 = 0; t0 < T; t0 += bt)
      for (let y0 = 0; y0 < H; y0 += bh)
        for (let x0 = 0; x0 < W; x0 += bw) {
          let sum = 0,
            sq = 0;
          for (let t = t0; t < t0 + bt; t++)
            for (let y = y0; y < y0 + bh; y++)
              for (let x = x0; x < x0 + bw; x++) {
                const v = clips.data[base + (t * H + y) * W + x]! * 127.5;
                sum += v;
                sq += v * v;
              }
          se += sq - (sum * sum) / (bt * bh * bw);
        }
  }
  return se / clips.data.length;
}

/**
 * Cross-entropy (bits/token) of held-out tokens under the training tokens' unigram distribution (add-one smoothing).
 */
export function unigramBits(train: Int32Array, held: Int32Array, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  for (const t of train) counts[t]!++;
  const total = train.length + vocab;
  let bits = 0;
  for (const t of held) bits -= Math.log2(counts[t]! / total);
  return bits / held.length;
}
