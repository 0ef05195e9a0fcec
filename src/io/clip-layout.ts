import { gridFrame, type Frame } from './frame.js';
import { VtokError, check } from '../util/errors.js';

/**
 * How the clips of a token file make its video, one rule for the writer (`vtok generate`) and the reader
 * (`vtok decode`). A file holds `samples` videos one after the other, each of `clipsPerSample` clips (a generated
 * clip, then each extension's); every clip after a video's first repeats the last `overlapFrames` frames of the
 * clip before it, which are dropped when the clips are joined; a video ends after `frames` frames. Several samples
 * are shown side by side.
 */
export interface ClipLayout {
  samples: number;
  /** Clips per sample; undefined: every clip of the file is one video's (a file from `vtok encode`). */
  clipsPerSample?: number;
  overlapFrames: number;
  /** Frames per sample (the rest pads the last clip or lies beyond the length asked for); default: all. */
  frames?: number;
}

/** Black pixels between samples shown side by side. */
const SAMPLE_GAP = 2;

/** One frame of every sample, left to right (a single sample as it is). */
export function sideBySide(frames: Frame[]): Frame {
  return frames.length === 1 ? frames[0]! : gridFrame(frames, { columns: frames.length, gap: SAMPLE_GAP });
}

/** The layout a token file's header records in `extra` (absent fields: one video of all its clips). */
export function clipLayout(extra: Record<string, unknown> | undefined, file: string): ClipLayout {
  const field = (key: string, min: number): number | undefined => {
    const v = extra?.[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new VtokError(`corrupt header: extra.${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`, file);
    }
    return v;
  };
  const layout: ClipLayout = {
    samples: field('samples', 1) ?? 1,
    clipsPerSample: field('clipsPerSample', 1),
    overlapFrames: field('overlapFrames', 0) ?? 0,
    frames: field('frames', 0),
  };
  const { samples, clipsPerSample } = layout;
  const why = `corrupt header: ${samples} samples without extra.clipsPerSample`;
  check(samples === 1 || clipsPerSample !== undefined, why, file);
  return layout;
}

/** Refuses a sample number (1 = the leftmost) that the layout does not have. */
export function checkSample(layout: ClipLayout, sample: number | undefined, file?: string): void {
  if (sample === undefined) return;
  const n = layout.samples;
  const holds = `the token file holds ${n} sample${n === 1 ? '' : 's'}`;
  check(Number.isInteger(sample) && sample >= 1 && sample <= n, `there is no sample ${sample}: ${holds}`, file);
}

/**
 * The frames of the video that `clips` make under `layout`, in order; a clip is decoded (`decode`) only when its
 * frames are next. One video streams clip by clip; samples side by side keep every clip's tokens (small) and decode
 * one clip of each sample at a time. `sample` (1 = the leftmost) gives that sample's video alone.
 */
export async function* layoutFrames<C>(
  clips: AsyncIterable<C>,
  layout: ClipLayout,
  decode: (clip: C) => Promise<Frame[]>,
  o: { sample?: number; file?: string } = {},
): AsyncGenerator<Frame> {
  const { samples, clipsPerSample: per, overlapFrames: overlap, frames: length = Infinity } = layout;
  checkSample(layout, o.sample, o.file);
  const checkCount = (n: number) => {
    if (per !== undefined && n !== samples * per) {
      const says = `its header says ${samples} sample(s) of ${per}`;
      throw new VtokError(`corrupt: the token file holds ${n} clips, ${says}`, o.file);
    }
  };
  // a clip's frames less those that repeat the clip before it in its sample
  const newFrames = (frames: Frame[], i: number) => (per !== undefined && i % per > 0 ? frames.slice(overlap) : frames);
  if (samples === 1 || o.sample !== undefined) {
    const wanted = (o.sample ?? 1) - 1;
    let n = 0,
      written = 0;
    for await (const clip of clips) {
      const i = n++;
      // every clip is still read, so that the file's checksums and end record are checked
      if ((per === undefined ? 0 : Math.floor(i / per)) !== wanted || written >= length) continue;
      for (const f of newFrames(await decode(clip), i)) {
        if (written >= length) break;
        written++;
        yield f;
      }
    }
    checkCount(n);
    return;
  }
  const all: C[] = [];
  for await (const clip of clips) all.push(clip);
  checkCount(all.length);
  let written = 0;
  for (let e = 0; e < per! && written < length; e++) {
    const parts: Frame[][] = [];
    for (let s = 0; s < samples; s++) parts.push(newFrames(await decode(all[s * per! + e]!), e));
    for (let t = 0; t < parts[0]!.length && written < length; t++, written++) {
      yield sideBySide(parts.map((p) => p[t]!));
    }
  }
}
