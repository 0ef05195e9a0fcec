import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { readAllFrames, writeVideo } from '../io/video.js';
import type { Frame } from '../io/frame.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError, check } from '../util/errors.js';
import type { Clip, ClipDataset, ClipShape } from './dataset.js';
import { IMAGE_EXTS } from './folder.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Natural-looking video from still photographs. A virtual camera moves over a photo (pan, zoom, rotation, hand
 * shake, and cuts to another shot), and cut-outs of other photos move across the frame (object motion and
 * occlusion). Clips are rendered on the fly from the decoded photos, so training never sees the same clip twice.
 *
 * `vtok prepare natural` decodes the photos once into a folder (`natural.json` + raw RGB photos at a fixed short
 * side) and writes the held-out clips as lossless .y4m files; photos are split into train and test by a hash of
 * their name, so the held-out clips show photos training never saw. Scales are in photo pixels per output pixel,
 * the same whatever the clip size, so a 64×64 training clip is statistically a crop of a 128×128 one.
 */

export const MANIFEST = 'natural.json';
/** Short side the photos are stored at: a 128-pixel view at scale 1 shows a third of it. */
export const PHOTO_SHORT_SIDE = 384;
/** One photo in this many goes to the test split. */
const TEST_EVERY = 6;

export interface Photo {
  name: string;
  width: number;
  height: number;
  /** H×W×3 RGB. */
  data: Uint8Array;
}

export interface ManifestPhoto {
  name: string;
  /** Raw RGB file, relative to the folder. */
  file: string;
  width: number;
  height: number;
  split: 'train' | 'test';
  source: string;
}

export interface NaturalManifest {
  format: 'vtok-natural';
  version: 1;
  shortSide: number;
  photos: ManifestPhoto[];
  heldout?: { files: string[]; frames: number; size: number; seed: number };
}

/** The split of a photo, decided by its name alone (FNV-1a), so it never changes with the set of photos. */
export function photoSplit(name: string): 'train' | 'test' {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % TEST_EVERY === 0 ? 'test' : 'train';
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** Bilinear sample of a photo at (x, y), edges clamped; writes RGB into out[o..o+2] blended with weight a. */
function sample(p: Photo, x: number, y: number, out: Float32Array, o: number, a: number): void {
  const W = p.width,
    H = p.height;
  x = Math.min(Math.max(x, 0), W - 1);
  y = Math.min(Math.max(y, 0), H - 1);
  const x0 = Math.min(Math.floor(x), Math.max(W - 2, 0)),
    y0 = Math.min(Math.floor(y), Math.max(H - 2, 0));
  const x1 = Math.min(x0 + 1, W - 1),
    y1 = Math.min(y0 + 1, H - 1);
  const fx = x - x0,
    fy = y - y0;
  const d = p.data;
  const i00 = (y0 * W + x0) * 3,
    i01 = (y0 * W + x1) * 3,
    i10 = (y1 * W + x0) * 3,
    i11 = (y1 * W + x1) * 3;
  for (let c = 0; c < 3; c++) {
    const top = d[i00 + c]! + (d[i01 + c]! - d[i00 + c]!) * fx;
    const bot = d[i10 + c]! + (d[i11 + c]! - d[i10 + c]!) * fx;
    out[o + c] = out[o + c]! * (1 - a) + (top + (bot - top) * fy) * a;
  }
}

/** A camera: photo coordinates of output pixel (u, v) measured from the view centre, per frame. */
interface Camera {
  photo: Photo;
  cx: Float64Array;
  cy: Float64Array;
  scale: Float64Array;
  angle: Float64Array;
  mirror: boolean;
}

/** A moving cut-out: a superellipse of another photo, positioned in view coordinates. */
interface CutOut {
  photo: Photo;
  /** Centre in view pixels (from the view centre), radii, rotation per frame. */
  x: Float64Array;
  y: Float64Array;
  rx: number;
  ry: number;
  angle: Float64Array;
  size: Float64Array;
  power: number;
  /** Where the texture comes from in its photo, and at what scale. */
  srcX: number;
  srcY: number;
  srcScale: number;
}

function camera(rng: SeededRng, photos: Photo[], T: number, H: number, W: number): Camera {
  const photo = photos[rng.int(photos.length)]!;
  const zoom = rng.next() < 0.35 ? rng.uniform(-0.025, 0.025) : 0;
  const spin = rng.next() < 0.25 ? rng.uniform(-0.025, 0.025) : 0;
  const tilt = spin !== 0 || rng.next() < 0.2 ? rng.uniform(-0.2, 0.2) : 0;
  const shake = rng.next() < 0.3 ? rng.uniform(0.5, 2.5) : 0;
  const mirror = rng.next() < 0.5;
  const dir = rng.uniform(0, 2 * Math.PI);
  let speed = rng.next() < 0.15 ? 0 : rng.uniform(0, 3.5);
  let s0 = rng.uniform(0.6, 1.6);
  const cam: Camera = {
    photo,
    cx: new Float64Array(T),
    cy: new Float64Array(T),
    scale: new Float64Array(T),
    angle: new Float64Array(T),
    mirror,
  };
  // Hand shake: a smoothed random walk, in output pixels.
  const jx = new Float64Array(T),
    jy = new Float64Array(T);
  for (let t = 1; t < T; t++) {
    jx[t] = 0.6 * jx[t - 1]! + shake * (rng.next() * 2 - 1);
    jy[t] = 0.6 * jy[t - 1]! + shake * (rng.next() * 2 - 1);
  }
  // Keep the whole trajectory inside the photo: shrink the motion and the scale until it fits.
  const half = Math.hypot(H, W) / 2;
  for (let attempt = 0; ; attempt++) {
    let sMax = 0;
    for (let t = 0; t < T; t++) sMax = Math.max(sMax, s0 * Math.exp(zoom * t));
    const margin = (tilt !== 0 || spin !== 0 ? half : Math.max(H, W) / 2) * sMax + (shake * 3 + 1) * sMax;
    const dx = Math.cos(dir) * speed * s0 * (T - 1),
      dy = Math.sin(dir) * speed * s0 * (T - 1);
    const loX = margin + Math.max(0, -dx),
      hiX = photo.width - margin - Math.max(0, dx);
    const loY = margin + Math.max(0, -dy),
      hiY = photo.height - margin - Math.max(0, dy);
    if ((loX <= hiX && loY <= hiY) || attempt >= 12) {
      const x0 = loX <= hiX ? rng.uniform(loX, hiX) : photo.width / 2;
      const y0 = loY <= hiY ? rng.uniform(loY, hiY) : photo.height / 2;
      for (let t = 0; t < T; t++) {
        const s = s0 * Math.exp(zoom * t);
        cam.scale[t] = s;
        cam.angle[t] = tilt + spin * t;
        cam.cx[t] = x0 + (dx * t) / Math.max(1, T - 1) + jx[t]! * s;
        cam.cy[t] = y0 + (dy * t) / Math.max(1, T - 1) + jy[t]! * s;
      }
      return cam;
    }
    speed *= 0.6;
    s0 = Math.max(0.5, s0 * 0.85);
  }
}

function cutOut(rng: SeededRng, photos: Photo[], avoid: Photo, T: number, H: number, W: number): CutOut {
  const others = photos.length > 1 ? photos.filter((p) => p !== avoid) : photos;
  const photo = others[rng.int(others.length)]!;
  const rx = rng.uniform(10, 32),
    ry = rx * rng.uniform(0.5, 1.5);
  const speed = rng.uniform(0.5, 4),
    dir = rng.uniform(0, 2 * Math.PI);
  const spin = rng.next() < 0.4 ? rng.uniform(-0.05, 0.05) : 0;
  const grow = rng.next() < 0.3 ? rng.uniform(-0.03, 0.03) : 0;
  // Start anywhere in or near the view, so objects enter, cross and leave it.
  const x0 = rng.uniform(-W / 2 - rx / 2, W / 2 + rx / 2),
    y0 = rng.uniform(-H / 2 - ry / 2, H / 2 + ry / 2);
  const a0 = rng.uniform(0, Math.PI);
  const c: CutOut = {
    photo,
    rx,
    ry,
    power: rng.next() < 0.5 ? 2 : 4,
    x: new Float64Array(T),
    y: new Float64Array(T),
    angle: new Float64Array(T),
    size: new Float64Array(T),
    srcScale: rng.uniform(0.6, 1.5),
    srcX: 0,
    srcY: 0,
  };
  const m = Math.max(rx, ry) * c.srcScale * 1.5;
  c.srcX = photo.width > 2 * m ? rng.uniform(m, photo.width - m) : photo.width / 2;
  c.srcY = photo.height > 2 * m ? rng.uniform(m, photo.height - m) : photo.height / 2;
  for (let t = 0; t < T; t++) {
    c.x[t] = x0 + Math.cos(dir) * speed * t;
    c.y[t] = y0 + Math.sin(dir) * speed * t;
    c.angle[t] = a0 + spin * t;
    c.size[t] = Math.exp(grow * t);
  }
  return c;
}

/**
 * Renders one clip, T×H×W×3 RGB: one or two shots (a cut), each a camera move over a photo with 0–2 cut-outs of
 * other photos moving in front of it.
 */
export function renderNaturalClip(photos: Photo[], rng: SeededRng, T: number, H: number, W: number): Uint8Array {
  check(photos.length > 0, 'no photos to render clips from');
  check(
    Number.isInteger(T) && T > 0 && Number.isInteger(H) && H > 0 && Number.isInteger(W) && W > 0,
    `clip size must be positive integers, got ${T}×${H}×${W}`,
  );
  const cutAt = T >= 4 && rng.next() < 0.2 ? 2 + rng.int(T - 3) : T;
  const out = new Uint8Array(T * H * W * 3);
  const px = new Float32Array(3);
  for (let start = 0; start < T; ) {
    const end = start === 0 ? cutAt : T;
    const len = end - start;
    const cam = camera(rng, photos, len, H, W);
    const u = rng.next();
    const nObjects = u < 0.45 ? 0 : u < 0.8 ? 1 : 2;
    const objects = Array.from({ length: nObjects }, () => cutOut(rng, photos, cam.photo, len, H, W));
    for (let t = 0; t < len; t++) {
      const s = cam.scale[t]!,
        ca = Math.cos(cam.angle[t]!),
        sa = Math.sin(cam.angle[t]!);
      const flip = cam.mirror ? -1 : 1;
      const base = (start + t) * H * W * 3;
      for (let y = 0; y < H; y++) {
        const v = y + 0.5 - H / 2;
        for (let x = 0; x < W; x++) {
          const uu = (x + 0.5 - W / 2) * flip;
          px[0] = px[1] = px[2] = 0;
          sample(cam.photo, cam.cx[t]! + s * (ca * uu - sa * v), cam.cy[t]! + s * (sa * uu + ca * v), px, 0, 1);
          for (const ob of objects) {
            const k = ob.size[t]!,
              oc = Math.cos(ob.angle[t]!),
              os = Math.sin(ob.angle[t]!);
            const dx = x + 0.5 - W / 2 - ob.x[t]!,
              dy = y + 0.5 - H / 2 - ob.y[t]!;
            const lx = (oc * dx + os * dy) / k,
              ly = (-os * dx + oc * dy) / k;
            const r = (Math.abs(lx / ob.rx) ** ob.power + Math.abs(ly / ob.ry) ** ob.power) ** (1 / ob.power);
            // About one pixel of soft edge, as a real object's boundary under a camera's blur.
            const a = Math.min(1, Math.max(0, (1 - r) * Math.min(ob.rx, ob.ry) + 0.5));
            if (a > 0) sample(ob.photo, ob.srcX + ob.srcScale * lx, ob.srcY + ob.srcScale * ly, px, 0, a);
          }
          const o = base + (y * W + x) * 3;
          out[o] = Math.round(px[0]!);
          out[o + 1] = Math.round(px[1]!);
          out[o + 2] = Math.round(px[2]!);
        }
      }
    }
    start = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The dataset

export interface NaturalOptions {
  /** A folder written by `vtok prepare natural`. */
  root: string;
  split: 'train' | 'test';
  frames: number;
  height: number;
  width: number;
  /** Clips per epoch (train) or in the split (test). */
  length: number;
  seed?: number;
}

export function readManifest(root: string): NaturalManifest {
  const path = join(root, MANIFEST);
  check(existsSync(path), `no ${MANIFEST} here: not a folder made by \`vtok prepare natural\``, root);
  let m: NaturalManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new VtokError(`not valid JSON (${(e as Error).message})`, path);
  }
  check(m && m.format === 'vtok-natural' && Array.isArray(m.photos), 'not a vtok natural-video manifest', path);
  check(m.version === 1, `manifest version ${m.version} is not supported (this vtok reads version 1)`, path);
  return m;
}

/** Loads the photos of one split into memory. */
export function loadPhotos(root: string, split: 'train' | 'test'): Photo[] {
  const m = readManifest(root);
  const photos = m.photos
    .filter((p) => p.split === split)
    .map((p) => {
      const file = join(root, p.file);
      check(existsSync(file), 'photo file is missing (re-run `vtok prepare natural`)', file);
      const data = new Uint8Array(readFileSync(file));
      check(
        data.length === p.width * p.height * 3,
        `has ${data.length} bytes, expected ${p.width}×${p.height}×3 = ${p.width * p.height * 3}`,
        file,
      );
      return { name: p.name, width: p.width, height: p.height, data };
    });
  check(photos.length > 0, `no ${split} photos in the manifest`, join(root, MANIFEST));
  return photos;
}

/** Clips rendered on the fly from the photos of one split; clip i of epoch e is the same on every run. */
export class NaturalClips implements ClipDataset {
  readonly length: number;
  readonly shape: ClipShape;
  private photos: Photo[];

  constructor(readonly opts: NaturalOptions) {
    check(Number.isInteger(opts.length) && opts.length > 0, `length must be a positive integer, got ${opts.length}`);
    this.photos = loadPhotos(opts.root, opts.split);
    this.length = opts.length;
    this.shape = { channels: 3, frames: opts.frames, height: opts.height, width: opts.width };
  }

  get(index: number, epoch = 0): Clip {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `clip index ${index} out of range [0, ${this.length})`,
    );
    // Held-out clips are fixed; training clips change every epoch.
    const seed =
      this.opts.split === 'test'
        ? hashSeed(this.opts.seed ?? 0, 0x7e57, index)
        : hashSeed(this.opts.seed ?? 0, epoch, index);
    return {
      data: renderNaturalClip(this.photos, new SeededRng(seed), this.shape.frames, this.shape.height, this.shape.width),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Preparation

/** Where Debian's wallpaper packages put their images. */
export const DEFAULT_PHOTO_DIRS = ['/usr/share/backgrounds', '/usr/share/wallpapers'];

function listImages(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listImages(p));
    else if (e.isFile() && IMAGE_EXTS.has(extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

/**
 * The photos under some folders, one file per picture: KDE wallpaper packages (<Name>/contents/images/<W>x<H>.*)
 * ship each picture at several sizes, so only the largest is kept, and their screenshots are skipped.
 */
export function findPhotos(dirs: string[]): { name: string; path: string }[] {
  const byName = new Map<string, { path: string; pixels: number }>();
  for (const dir of dirs) {
    check(existsSync(dir) && statSync(dir).isDirectory(), 'no such folder of photos', dir);
    for (const path of listImages(dir)) {
      const rel = relative(dir, path);
      if (/(^|\/)contents\/screenshot\.[a-z]+$/i.test(rel)) continue;
      const kde = /^(.*)\/contents\/images(?:_dark)?\/(\d+)x(\d+)\.[a-z]+$/i.exec(rel);
      const name = (kde ? kde[1]! : rel.slice(0, -extname(rel).length)).replace(/[^A-Za-z0-9._-]+/g, '_');
      const pixels = kde ? Number(kde[2]) * Number(kde[3]) : Infinity;
      const prev = byName.get(name);
      if (!prev || pixels > prev.pixels) byName.set(name, { path, pixels });
    }
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, v]) => ({ name, path: v.path }));
}

export interface PrepareOptions {
  out: string;
  sources?: string[];
  /** Held-out clips to write as .y4m (default 32), their frames and size (default 17 × 128). */
  heldoutClips?: number;
  frames?: number;
  size?: number;
  seed?: number;
  log?: (line: string) => void;
}

/**
 * Decodes the photos (short side PHOTO_SHORT_SIDE, raw RGB), assigns splits, writes the manifest and the held-out
 * clips. Photos that cannot be decoded are reported and skipped. Re-running overwrites.
 */
export async function prepareNatural(opts: PrepareOptions): Promise<NaturalManifest> {
  const log = opts.log ?? (() => {});
  const found = findPhotos(opts.sources ?? DEFAULT_PHOTO_DIRS);
  check(
    found.length >= 2,
    `found ${found.length} photos; need at least 2 (one for each split)`,
    (opts.sources ?? DEFAULT_PHOTO_DIRS).join(', '),
  );
  const photos: ManifestPhoto[] = [];
  for (const { name, path } of found) {
    let frame: Frame | undefined;
    try {
      frame = (await readAllFrames(path, { size: PHOTO_SHORT_SIDE, maxFrames: 1 }))[0];
    } catch (e) {
      log(`skipped ${path}: ${(e as Error).message}`);
      continue;
    }
    if (!frame) continue;
    const file = join('photos', `${name}.rgb`);
    writeFileAtomic(join(opts.out, file), frame.data);
    photos.push({ name, file, width: frame.width, height: frame.height, split: photoSplit(name), source: path });
  }
  check(photos.length >= 2, 'fewer than 2 photos could be decoded', (opts.sources ?? DEFAULT_PHOTO_DIRS).join(', '));
  // A tiny photo set may hash into one split; the first photo by name then moves, so both splits exist.
  for (const split of ['test', 'train'] as const) {
    if (!photos.some((p) => p.split === split)) photos[split === 'test' ? 0 : photos.length - 1]!.split = split;
  }
  const manifest: NaturalManifest = { format: 'vtok-natural', version: 1, shortSide: PHOTO_SHORT_SIDE, photos };
  writeFileAtomic(join(opts.out, MANIFEST), JSON.stringify(manifest, null, 2));
  const n = opts.heldoutClips ?? 32,
    frames = opts.frames ?? 17,
    size = opts.size ?? 128,
    seed = opts.seed ?? 0;
  const test = new NaturalClips({
    root: opts.out,
    split: 'test',
    frames,
    height: size,
    width: size,
    length: Math.max(1, n),
    seed,
  });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = join('heldout', `${String(i).padStart(3, '0')}.y4m`);
    await writeVideo(join(opts.out, file), clipFrames(test.get(i).data, frames, size, size), { fps: 8 });
    files.push(file);
  }
  manifest.heldout = { files, frames, size, seed };
  writeFileAtomic(join(opts.out, MANIFEST), JSON.stringify(manifest, null, 2));
  const nTest = photos.filter((p) => p.split === 'test').length;
  log(
    `${photos.length} photos (${photos.length - nTest} train, ${nTest} test) ` +
      `and ${n} held-out clips of ${frames}×${size}×${size} → ${opts.out}`,
  );
  return manifest;
}

/** A T×H×W×3 clip as frames. */
export function clipFrames(data: Uint8Array, T: number, H: number, W: number): Frame[] {
  const per = H * W * 3;
  check(data.length === T * per, `clip has ${data.length} bytes, expected ${T}×${H}×${W}×3`);
  return Array.from({ length: T }, (_, t) => ({ width: W, height: H, data: data.subarray(t * per, (t + 1) * per) }));
}

/** The held-out clip files of a prepared folder, in order. */
export function heldoutFiles(root: string): string[] {
  const m = readManifest(root);
  check(
    m.heldout && m.heldout.files.length > 0,
    'the folder has no held-out clips (re-run `vtok prepare natural`)',
    join(root, MANIFEST),
  );
  return m.heldout.files.map((f) => join(root, f));
}
