import { packUint8 } from '../io/frame.js';
import { check } from '../util/errors.js';

/**
 * What every dataset looks like to the loader: a fixed number of clips, each addressable by index, all of one
 * shape. Clips are uint8, T×H×W×C interleaved (what decoders and renderers produce); the loader turns batches
 * into N×C×T×H×W float tensors in [-1, 1].
 */
export interface Clip {
  data: Uint8Array;
  label?: number;
}

export interface ClipShape {
  channels: number;
  frames: number;
  height: number;
  width: number;
}

export interface ClipDataset {
  readonly length: number;
  readonly shape: ClipShape;
  /** Class names where clips are labelled (label = index into this list). */
  readonly classes?: string[];
  /** Clip `index`; `epoch` lets random crops/offsets differ between epochs (deterministically). */
  get(index: number, epoch?: number): Clip | Promise<Clip>;
}

export interface Batch {
  /** N×C×T×H×W, values in [-1, 1]. */
  data: Float32Array;
  shape: [number, number, number, number, number];
  labels?: Int32Array;
  /** Dataset indices of the clips in this batch. */
  indices: Int32Array;
  epoch: number;
}

/** Packs uint8 T×H×W×C clips into one N×C×T×H×W float batch in [-1, 1]. */
export function clipsToBatch(clips: Clip[], shape: ClipShape, indices: ArrayLike<number>, epoch = 0): Batch {
  const { channels: C, frames: T, height: H, width: W } = shape;
  const N = clips.length;
  const per = T * H * W;
  const data = new Float32Array(N * C * per);
  const labelled = clips.every((c) => c.label !== undefined);
  clips.forEach((clip, n) => {
    check(
      clip.data.length === per * C,
      `clip ${indices[n]} has ${clip.data.length} bytes, expected ${per * C} (${T}×${H}×${W}×${C})`,
    );
    packUint8(clip.data, C, data, n * C * per, per);
  });
  return {
    data,
    shape: [N, C, T, H, W],
    labels: labelled && N > 0 ? Int32Array.from(clips, (c) => c.label!) : undefined,
    indices: Int32Array.from(indices),
    epoch,
  };
}

/** Fetches the clips of one batch (up to `concurrency` at a time: folder clips each run an ffmpeg) and packs them. */
export async function fetchBatch(
  ds: ClipDataset,
  indices: ArrayLike<number>,
  epoch: number,
  concurrency = 2,
): Promise<Batch> {
  const clips: Clip[] = new Array(indices.length);
  let next = 0;
  const lane = async () => {
    while (next < indices.length) {
      const i = next++;
      clips[i] = await ds.get(indices[i]!, epoch);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, indices.length)) }, lane));
  return clipsToBatch(clips, ds.shape, indices, epoch);
}
