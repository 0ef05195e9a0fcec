import { VtokError, check } from '../util/errors.js';

/** One video frame: 8-bit RGB, row-major, interleaved (data.length = height·width·3). */
export interface Frame {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A float tensor in the models' layout (PyTorch's): N×C×T×H×W, values in [-1, 1]. */
export interface ClipTensor {
  data: Float32Array;
  shape: [number, number, number, number, number];
}

export function blankFrame(width: number, height: number): Frame {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/**
 * The one uint8 → [-1, 1] packer (x/127.5 − 1): interleaved samples of `channels` channels (…×C, what decoders and
 * renderers produce) become C planes in `out`, plane c starting at `offset + c·channelStride`.
 */
export function packUint8(
  src: Uint8Array,
  channels: number,
  out: Float32Array,
  offset: number,
  channelStride: number,
): void {
  const n = src.length / channels;
  for (let c = 0; c < channels; c++) {
    const base = offset + c * channelStride;
    for (let p = 0; p < n; p++) out[base + p] = src[p * channels + c]! / 127.5 - 1;
  }
}

/**
 * Packs clips of RGB frames into one N×3×T×H×W float tensor in [-1, 1] (x/127.5 − 1). Every clip must have the
 * same length and frame size.
 */
export function clipsToTensor(clips: Frame[][]): ClipTensor {
  check(clips.length > 0 && clips[0]!.length > 0, 'clipsToTensor: need at least one clip with at least one frame');
  const T = clips[0]!.length;
  const { width: W, height: H } = clips[0]![0]!;
  const N = clips.length;
  const out = new Float32Array(N * 3 * T * H * W);
  const plane = H * W;
  clips.forEach((clip, n) => {
    check(clip.length === T, `clipsToTensor: clip ${n} has ${clip.length} frames, expected ${T}`);
    clip.forEach((f, t) => {
      check(
        f.width === W && f.height === H,
        `clipsToTensor: clip ${n} frame ${t} is ${f.width}×${f.height}, expected ${W}×${H}`,
      );
      packUint8(f.data, 3, out, (n * 3 * T + t) * plane, T * plane);
    });
  });
  return { data: out, shape: [N, 3, T, H, W] };
}

/**
 * The inverse of clipsToTensor: N×C×T×H×W floats in [-1, 1] back to uint8 RGB frames, clamped and rounded.
 * C = 1 is shown as gray; C = 3 is RGB.
 */
export function tensorToClips(data: Float32Array, shape: readonly number[]): Frame[][] {
  if (shape.length !== 5) throw new VtokError(`tensorToClips: expected shape N×C×T×H×W, got [${shape.join(', ')}]`);
  const [N, C, T, H, W] = shape as [number, number, number, number, number];
  check(C === 1 || C === 3, `tensorToClips: expected 1 or 3 channels, got ${C}`);
  check(
    data.length === N * C * T * H * W,
    `tensorToClips: data has ${data.length} values, shape needs ${N * C * T * H * W}`,
  );
  const plane = H * W;
  const clips: Frame[][] = [];
  for (let n = 0; n < N; n++) {
    const clip: Frame[] = [];
    for (let t = 0; t < T; t++) {
      const f = blankFrame(W, H);
      for (let c = 0; c < 3; c++) {
        const base = ((n * C + (C === 1 ? 0 : c)) * T + t) * plane;
        for (let p = 0; p < plane; p++) f.data[p * 3 + c] = toByte(data[base + p]!);
      }
      clip.push(f);
    }
    clips.push(clip);
  }
  return clips;
}

function toByte(x: number): number {
  const v = Math.round((x + 1) * 127.5);
  return v < 0 ? 0 : v > 255 ? 255 : Number.isNaN(v) ? 0 : v;
}

/** Lays frames side by side in rows of `columns` (all of them in one row by default), with a `gap` of black. */
export function gridFrame(frames: Frame[], opts: { columns?: number; gap?: number } = {}): Frame {
  check(frames.length > 0, 'gridFrame: no frames');
  const { width: w, height: h } = frames[0]!;
  const cols = Math.max(1, Math.min(opts.columns ?? frames.length, frames.length));
  const rows = Math.ceil(frames.length / cols);
  const gap = opts.gap ?? 0;
  const out = blankFrame(cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap);
  frames.forEach((f, i) => {
    check(f.width === w && f.height === h, `gridFrame: frame ${i} is ${f.width}×${f.height}, expected ${w}×${h}`);
    const x0 = (i % cols) * (w + gap);
    const y0 = Math.floor(i / cols) * (h + gap);
    for (let y = 0; y < h; y++)
      out.data.set(f.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * out.width + x0) * 3);
  });
  return out;
}
