import { check } from '../util/errors.js';
import type { Clip, ClipDataset, ClipShape } from './dataset.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Synthetic clips with known content, for fast tests and for training a small classifier whose features give
 * Fréchet distances: one shape (circle, square, triangle or cross), solid or striped, moving in a straight line
 * over a drifting texture (gradient, stripes or checkerboard). Every clip is labelled, by its shape or by its
 * direction of motion; with motion labels the shape never reaches an edge, so the direction never flips.
 */

export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export const DIRECTIONS = ['right', 'left', 'down', 'up'] as const;
const DIR_VEC: Record<(typeof DIRECTIONS)[number], [number, number]> = {
  right: [1, 0],
  left: [-1, 0],
  down: [0, 1],
  up: [0, -1],
};
export const TEXTURES = ['gradient', 'stripes', 'checker', 'flat'] as const;
export type Texture = (typeof TEXTURES)[number];
/** The backgrounds drawn when `textures` is not given ('flat' only when asked for). */
const DEFAULT_TEXTURES: readonly Texture[] = ['gradient', 'stripes', 'checker'];

export interface SyntheticOptions {
  length?: number;
  seed?: number;
  frames?: number;
  height?: number;
  width?: number;
  labelBy?: 'shape' | 'motion';
  /**
   * Backgrounds to draw from (default gradient, stripes, checker). Hard-edged stripes and checkers in random
   * colours carry most of a clip's pixel variance, and a tokenizer with a few hundred bits per clip cannot place
   * their edges; with gradient or flat backgrounds the moving shape is most of what is left to model.
   */
  textures?: readonly Texture[];
}

export interface SyntheticSample {
  /** T×H×W×3 RGB. */
  data: Uint8Array;
  label: number;
  shape: (typeof SHAPES)[number];
  direction?: (typeof DIRECTIONS)[number];
  /** Shape centre per frame, T×[x, y]. */
  centers: Float64Array;
  /** Half-size of the shape in pixels. */
  radius: number;
  /** Fill colour (and stripe colour when striped). */
  color: [number, number, number];
  striped: boolean;
  texture: Texture;
}

type RGB = [number, number, number];

function inside(shape: (typeof SHAPES)[number], dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 'triangle': // apex up, base at dy = r
      return dy <= r && dy >= -r && Math.abs(dx) <= ((dy + r) / 2) * 1.0;
    case 'cross':
      return (Math.abs(dx) <= r * 0.3 && Math.abs(dy) <= r) || (Math.abs(dy) <= r * 0.3 && Math.abs(dx) <= r);
  }
}

/** Generates clip `index`; deterministic in (seed, index, options). */
export function syntheticSample(index: number, opts: SyntheticOptions = {}): SyntheticSample {
  const T = opts.frames ?? 16;
  const H = opts.height ?? 64;
  const W = opts.width ?? 64;
  const labelBy = opts.labelBy ?? 'shape';
  check(H >= 8 && W >= 8 && T >= 1, `synthetic clips need at least 8×8 pixels and 1 frame, got ${T}×${H}×${W}`);
  const rng = new SeededRng(hashSeed(opts.seed ?? 0, index, 0x5717));
  const color = (): RGB => [rng.int(256), rng.int(256), rng.int(256)];
  const label = rng.int(labelBy === 'shape' ? SHAPES.length : DIRECTIONS.length);
  const shape = labelBy === 'shape' ? SHAPES[label]! : SHAPES[rng.int(SHAPES.length)]!;
  const direction = labelBy === 'motion' ? DIRECTIONS[label]! : undefined;

  // Background texture drifting slowly, so even the background carries motion to model.
  const textures = opts.textures ?? DEFAULT_TEXTURES;
  check(
    textures.length > 0 && textures.every((t) => TEXTURES.includes(t)),
    `synthetic textures must be some of ${TEXTURES.join(', ')}, got ${JSON.stringify(textures)}`,
  );
  const texture = textures[rng.int(textures.length)]!;
  const bgA = color();
  const drawnB = color(); // drawn for every texture, so one clip's other draws do not depend on the texture list
  const bgB = texture === 'flat' ? bgA : drawnB;
  const period = 6 + rng.int(10);
  const angle = rng.uniform(0, Math.PI);
  const drift: [number, number] = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)];

  // The shape: a colour far from the background's mean so it stays visible.
  const r = Math.min(H, W) * rng.uniform(0.12, 0.2);
  let fg = color();
  const bgMean = bgA.map((v, i) => (v + bgB[i]!) / 2);
  if (fg.reduce((s, v, i) => s + Math.abs(v - bgMean[i]!), 0) < 200) fg = bgMean.map((v) => (v < 128 ? 255 : 0)) as RGB;
  const striped = rng.next() < 0.5;

  let v: [number, number];
  let c0: [number, number];
  const margin = r + 1;
  if (direction) {
    // Travel along the labelled direction without reaching an edge in T frames.
    const [ux, uy] = DIR_VEC[direction];
    const room = (ux !== 0 ? W : H) - 2 * margin;
    const speed = Math.min(rng.uniform(0.8, 2.5), room / Math.max(1, T - 1));
    v = [ux * speed, uy * speed];
    const travel = speed * (T - 1);
    const along = margin + rng.uniform(0, Math.max(0, room - travel));
    const across = margin + rng.uniform(0, (ux !== 0 ? H : W) - 2 * margin);
    c0 = ux !== 0 ? [ux > 0 ? along : W - along, across] : [across, uy > 0 ? along : H - along];
  } else {
    const a = rng.uniform(-Math.PI, Math.PI);
    const speed = rng.uniform(0.8, 2.5);
    v = [speed * Math.cos(a), speed * Math.sin(a)];
    c0 = [rng.uniform(margin, W - margin), rng.uniform(margin, H - margin)];
  }

  const data = new Uint8Array(T * H * W * 3);
  const centers = new Float64Array(T * 2);
  let [cx, cy] = c0;
  const cosA = Math.cos(angle);
  const sinA = Math.sin(angle);
  for (let t = 0; t < T; t++) {
    centers[2 * t] = cx;
    centers[2 * t + 1] = cy;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = ((t * H + y) * W + x) * 3;
        const px = x + drift[0] * t;
        const py = y + drift[1] * t;
        const u = (px * cosA + py * sinA) / period;
        let mix: number;
        if (texture === 'gradient') mix = 0.5 + 0.5 * Math.sin(u * 0.7);
        else if (texture === 'stripes') mix = Math.floor(u) % 2 === 0 ? 0 : 1;
        else if (texture === 'checker') mix = (Math.floor(px / period) + Math.floor(py / period)) % 2 === 0 ? 0 : 1;
        else mix = 0; // flat: bgB is bgA
        for (let c = 0; c < 3; c++) data[o + c] = Math.round(bgA[c]! + (bgB[c]! - bgA[c]!) * Math.abs(mix));
        // Shape with 2×2 supersampled edges.
        let cover = 0;
        for (const sy of [0.25, 0.75])
          for (const sx of [0.25, 0.75]) if (inside(shape, x + sx - cx, y + sy - cy, r)) cover++;
        if (cover === 0) continue;
        const dark = striped && ((Math.floor((x - cx) / 3) % 2) + 2) % 2 === 1; // stripes move with the shape
        const a = cover / 4;
        for (let c = 0; c < 3; c++) {
          const f = dark ? fg[c]! * 0.5 : fg[c]!;
          data[o + c] = Math.round(data[o + c]! * (1 - a) + f * a);
        }
      }
    }
    // Bounce off the edges (never happens with motion labels, by construction).
    const eps = 1e-6; // a path planned to end exactly at the margin must not bounce from round-off
    if (cx + v[0] < margin - eps || cx + v[0] > W - margin + eps) v[0] = -v[0];
    if (cy + v[1] < margin - eps || cy + v[1] > H - margin + eps) v[1] = -v[1];
    cx += v[0];
    cy += v[1];
  }
  return { data, label, shape, direction, centers, radius: r, color: fg, striped, texture };
}

export class SyntheticClips implements ClipDataset {
  readonly length: number;
  readonly shape: ClipShape;
  readonly classes: string[];

  constructor(readonly opts: SyntheticOptions = {}) {
    this.length = opts.length ?? 1000;
    check(
      Number.isInteger(this.length) && this.length > 0,
      `synthetic length must be a positive integer, got ${this.length}`,
    );
    this.shape = { channels: 3, frames: opts.frames ?? 16, height: opts.height ?? 64, width: opts.width ?? 64 };
    this.classes = [...((opts.labelBy ?? 'shape') === 'shape' ? SHAPES : DIRECTIONS)];
  }

  get(index: number): Clip {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `synthetic index ${index} out of range [0, ${this.length})`,
    );
    const s = syntheticSample(index, this.opts);
    return { data: s.data, label: s.label };
  }
}
