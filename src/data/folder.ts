import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { VtokError, check } from '../util/errors.js';
import { probeVideo, readClip, type ReadOptions } from '../io/video.js';
import type { Clip, ClipDataset, ClipShape } from './dataset.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Datasets from folders on disk.
 *
 * Videos in the UCF-101 layout: root/<Class>/<video>, class = subfolder (sorted by name, or as listed in a
 * classInd.txt). A split file (UCF-101's trainlist0N.txt / testlist0N.txt: one "Class/video.avi [label]" per
 * line, relative to root) picks the videos of a split. Images (png/jpg/…) are 1-frame videos; at the top level
 * of root they are unlabelled, in subfolders they are labelled by subfolder like videos.
 */

export const VIDEO_EXTS = new Set(['.mp4', '.webm', '.mkv', '.avi', '.gif', '.y4m', '.mov', '.m4v']);
export const IMAGE_EXTS = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.webp']);

export interface FolderItem {
  path: string;
  label?: number;
}

export interface FolderIndex {
  items: FolderItem[];
  classes?: string[];
}

function listFiles(dir: string, exts: Set<string>): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p, exts));
    else if (exts.has(extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

/** Class names from classInd.txt ("1 ApplyEyeMakeup" per line, 1-based). */
function readClassIndex(path: string): string[] {
  const names: string[] = [];
  readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim()) return;
      const m = /^\s*(\d+)\s+(\S+)\s*$/.exec(line);
      check(m, `line ${i + 1}: expected "<index> <ClassName>", got ${JSON.stringify(line)}`, path);
      names[Number(m[1]) - 1] = m[2]!;
    });
  check(names.length > 0 && names.every((n) => n !== undefined), 'class index has gaps or is empty', path);
  return names;
}

/** Lists the clips of a folder: every file with one of `exts`, labelled by top-level subfolder. */
export function scanFolder(
  root: string,
  opts: { exts: Set<string>; split?: string; classIndex?: string },
): FolderIndex {
  check(existsSync(root) && statSync(root).isDirectory(), 'no such folder', root);
  let files: string[];
  if (opts.split) {
    check(existsSync(opts.split), 'no such split file', opts.split);
    files = [];
    readFileSync(opts.split, 'utf8')
      .split(/\r?\n/)
      .forEach((line, i) => {
        const rel = line.trim().split(/\s+/)[0];
        if (!rel) return;
        const p = join(root, rel);
        check(existsSync(p), `line ${i + 1}: ${rel} is not in ${root}`, opts.split);
        files.push(p);
      });
  } else {
    files = listFiles(root, opts.exts);
  }
  check(files.length > 0, `no ${[...opts.exts].join('/')} files found`, opts.split ?? root);
  const top = (p: string) => {
    const parts = relative(root, p).split(sep);
    return parts.length > 1 ? parts[0]! : undefined;
  };
  const labelled = files.every((f) => top(f) !== undefined);
  if (!labelled) return { items: files.map((path) => ({ path })) };
  const classes = opts.classIndex ? readClassIndex(opts.classIndex) : [...new Set(files.map((f) => top(f)!))].sort();
  const index = new Map(classes.map((c, i) => [c, i]));
  const items = files.map((path) => {
    const label = index.get(top(path)!);
    if (label === undefined)
      throw new VtokError(`class ${top(path)} of ${path} is not in the class index`, opts.classIndex);
    return { path, label };
  });
  return { items, classes };
}

export interface VideoFolderOptions {
  root: string;
  /** Frames per clip. */
  frames: number;
  /** Center crop [height, width] (or a square side) every clip is cut to. */
  crop: number | [number, number];
  /** Short side to resize to before cropping (default: the crop's larger side). */
  size?: number;
  fps?: number;
  stride?: number;
  /** Where in the video the clip starts (default 'random': seeded by (seed, epoch, clip index)). */
  clipStart?: 'start' | 'center' | 'random';
  seed?: number;
  split?: string;
  classIndex?: string;
  /** Images instead of videos (each a 1-frame clip; `frames` must be 1). */
  images?: boolean;
}

export class FolderDataset implements ClipDataset {
  readonly length: number;
  readonly shape: ClipShape;
  readonly classes?: string[];
  readonly items: FolderItem[];
  private read: ReadOptions;

  constructor(readonly opts: VideoFolderOptions) {
    const index = scanFolder(opts.root, {
      exts: opts.images ? IMAGE_EXTS : VIDEO_EXTS,
      split: opts.split,
      classIndex: opts.classIndex,
    });
    this.items = index.items;
    this.classes = index.classes;
    this.length = this.items.length;
    check(!opts.images || opts.frames === 1, `an image folder gives 1-frame clips, got frames = ${opts.frames}`);
    check(Number.isInteger(opts.frames) && opts.frames > 0, `frames must be a positive integer, got ${opts.frames}`);
    const [ch, cw] = typeof opts.crop === 'number' ? [opts.crop, opts.crop] : opts.crop;
    this.shape = { channels: 3, frames: opts.frames, height: ch, width: cw };
    this.read = { size: opts.size ?? Math.max(ch, cw), crop: [ch, cw], fps: opts.fps, stride: opts.stride };
  }

  async get(index: number, epoch = 0): Promise<Clip> {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `folder index ${index} out of range [0, ${this.length})`,
    );
    const item = this.items[index]!;
    const T = this.shape.frames;
    let startFrame = 0;
    const where = this.opts.clipStart ?? 'random';
    if (!this.opts.images && where !== 'start') {
      const info = await probeVideo(item.path);
      const available = Math.floor(
        (this.opts.fps ? info.duration * this.opts.fps : info.frames) / (this.opts.stride ?? 1),
      );
      const slack = Math.max(0, available - T);
      startFrame =
        (where === 'center'
          ? Math.floor(slack / 2)
          : new SeededRng(hashSeed(this.opts.seed ?? 0, epoch, index)).int(slack + 1)) * (this.opts.stride ?? 1);
    }
    const frames = await readClip(item.path, T, { ...this.read, startFrame, pad: true });
    const data = new Uint8Array(T * this.shape.height * this.shape.width * 3);
    frames.forEach((f, t) => {
      data.set(f.data, t * f.data.length);
    });
    return { data, label: item.label };
  }
}
