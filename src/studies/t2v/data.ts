import { existsSync } from 'node:fs';
import { captionedMnistSource, type LabelledClips } from '../../classifier/video-classifier.js';
import { captionedMnistSample } from '../../data/captioned-mnist.js';
import * as E from '../../engine/core.js';
import type { ClipTensor } from '../../io/frame.js';
import { loadTensors, saveTensors } from '../../nn/weights-file.js';
import { VtokError } from '../../util/errors.js';

/** Held-out captions, seen digit×motion pairs ('test') and held-out pairs ('unseen'), on MNIST test digits. */
export type HeldSplit = 'test' | 'unseen';
export const HELD_SPLITS: readonly HeldSplit[] = ['test', 'unseen'];

export interface LabelledSet extends LabelledClips {
  captions: string[];
}

/** One-digit clips `start` … `start + count − 1` of a held-out split with their captions and (digit, axis) labels. */
export function realClips(
  split: HeldSplit,
  range: { start: number; count: number },
  clip: { frames: number; channels: 1 | 3 },
): LabelledSet {
  const c = captionedMnistSource({ ...clip, split }).clips(range.start, range.count, 0);
  const captions = Array.from(
    { length: range.count },
    (_, i) => captionedMnistSample(range.start + i, { split, frames: clip.frames, digits: 1 }).caption,
  );
  return { ...c, captions };
}

/** `clips` in [-1, 1] with the labels the captions asked for. */
export const withLabels = (clips: ClipTensor, asked: LabelledSet, n = clips.shape[0]): LabelledSet => ({
  data: clips.data,
  shape: clips.shape,
  labels: asked.labels.map((l) => l.subarray(0, n)),
  captions: asked.captions.slice(0, n),
});

/** Clips in [-1, 1] saved as 8-bit (what any video file keeps), atomically. */
export function saveClips(path: string, clips: ClipTensor, metadata: Record<string, string> = {}): void {
  const q = Uint8Array.from(clips.data, (v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5))));
  saveTensors(path, new Map([['clips', E.concrete(q, clips.shape, 'uint8')]]), metadata);
}

export function loadClips(path: string): ClipTensor {
  if (!existsSync(path)) throw new VtokError('no such clips file', path);
  const t = loadTensors(path).tensors.get('clips');
  if (t?.dtype !== 'uint8' || t.rank !== 5)
    throw new VtokError('expected a uint8 tensor "clips" [N, C, T, H, W]', path);
  const [N, C, T, H, W] = t.shape as [number, number, number, number, number];
  return { data: Float32Array.from(t.data as Uint8Array, (v) => v / 127.5 - 1), shape: [N, C, T, H, W] };
}
