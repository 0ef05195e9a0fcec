import { check } from '../util/errors.js';
import type { Clip, ClipDataset, ClipShape } from './dataset.js';
import { DIGIT, loadMnist, paste } from './moving-mnist.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Captioned Moving MNIST, for text-to-video at small scale (as in the text-to-video literature on Moving MNIST):
 * one or two MNIST digits on a 64×64 gray canvas, each bouncing along ONE axis, with a template caption naming
 * each digit and its motion, in exactly these forms:
 *
 *   "the digit 4 moves left and right"
 *   "the digit 4 moves up and down"
 *   "the digit 4 moves up and down and the digit 7 moves left and right"
 *
 * Held-out combinations: the digit×motion pairs in HELD_OUT (0 up and down, 3 left and right, 6 up and down,
 * 9 left and right) never appear in the 'train' split; 'val' and 'test' have only the other (seen) pairs, 'unseen'
 * has a held-out pair for its first digit. 'train' draws MNIST training digits under the caller's seed; 'val',
 * 'test' and 'unseen' draw MNIST test digits under fixed seeds of their own, so every run evaluates on the same
 * clips. 'val' is for choosing a checkpoint (`vtok train lm --val-shards`): no clip of it is a 'test' or 'unseen'
 * clip (the text-to-video study evaluates those), though a digit image may occur in both (one pool of 10,000).
 *
 * Motion follows Moving MNIST's rule on its axis: 2–6 pixels per frame, reversed when the next position would
 * pass 2 pixels beyond an edge; the other coordinate stays put. Frames default to 5 (the shipped tokenizer's clip).
 */

export type Axis = 'horizontal' | 'vertical';
export const AXES: readonly Axis[] = ['horizontal', 'vertical'];
export const MOTION_WORDS: Record<Axis, string> = { horizontal: 'left and right', vertical: 'up and down' };

/** Digit×axis pairs kept out of the training captions. */
export const HELD_OUT: readonly (readonly [number, Axis])[] = [
  [0, 'vertical'],
  [3, 'horizontal'],
  [6, 'vertical'],
  [9, 'horizontal'],
];
export const isHeldOut = (digit: number, axis: Axis): boolean => HELD_OUT.some(([d, a]) => d === digit && a === axis);

export const CAPTIONED_TEST_SEED = 0xca97e57;
export const CAPTIONED_UNSEEN_SEED = 0xca9a11;
export const CAPTIONED_VAL_SEED = 0xca9a1d;

export type CaptionedSplit = 'train' | 'val' | 'test' | 'unseen';
export const CAPTIONED_SPLITS: readonly CaptionedSplit[] = ['train', 'val', 'test', 'unseen'];

export interface CaptionedClip extends Clip {
  caption: string;
  /** What the caption says, as data (for classifiers and evaluation). */
  labels: Record<string, unknown>;
}

/** A dataset whose clips carry captions. */
export interface CaptionedDataset extends ClipDataset {
  get(index: number, epoch?: number): CaptionedClip | Promise<CaptionedClip>;
}

export interface CaptionedMnistOptions {
  split?: CaptionedSplit;
  length?: number;
  /** Seed of the train split. */
  seed?: number;
  /** Frames per clip (default 5; 17 for 4× temporal tokenizers). */
  frames?: number;
  /** Digits per clip: 1, 2, or 'mixed' (each clip 1 or 2 with equal chance; the default). */
  digits?: 1 | 2 | 'mixed';
  channels?: 1 | 3;
  /**
   * 'train' split only: every digit×motion pair, held-out ones included. For evaluators (a classifier that must
   * read held-out pairs too, or it learns that a 0 never moves up and down); never for an LM's training captions.
   */
  allPairs?: boolean;
}

export interface CaptionedMnistSample {
  /** T×64×64 gray frames. */
  frames: Uint8Array;
  caption: string;
  digits: number[];
  axes: Axis[];
  /** MNIST index of each digit's image. */
  digitIndex: number[];
  /** Top-left corner of each digit per frame, T×digits×[x, y]. */
  positions: Float64Array;
}

export const SIZE = 64;

export function caption(digits: number[], axes: Axis[]): string {
  return digits.map((d, k) => `the digit ${d} moves ${MOTION_WORDS[axes[k]!]}`).join(' and ');
}

/** Reads a caption of the template forms back into digits and axes (undefined when it is not one). */
export function parseCaption(text: string): { digits: number[]; axes: Axis[] } | undefined {
  const m = new RegExp(
    /^the digit (\d) moves (left and right|up and down)/.source +
      /(?: and the digit (\d) moves (left and right|up and down))?$/.source,
  ).exec(text);
  if (!m) return undefined;
  const axis = (w: string): Axis => (w === 'left and right' ? 'horizontal' : 'vertical');
  const digits = [Number(m[1])];
  const axes = [axis(m[2]!)];
  if (m[3]) {
    digits.push(Number(m[3]));
    axes.push(axis(m[4]!));
  }
  return { digits, axes };
}

const byClass = new Map<string, number[][]>();
function digitsByClass(split: 'train' | 'test'): number[][] {
  const hit = byClass.get(split);
  if (hit) return hit;
  const m = loadMnist(split);
  const lists: number[][] = Array.from({ length: 10 }, () => []);
  for (let i = 0; i < m.count; i++) lists[m.labels[i]!]!.push(i);
  byClass.set(split, lists);
  return lists;
}

/** Clip `index` of a split; deterministic in (split, seed, index, options). */
export function captionedMnistSample(index: number, opts: CaptionedMnistOptions = {}): CaptionedMnistSample {
  const split = opts.split ?? 'train';
  const T = opts.frames ?? 5;
  check(Number.isInteger(T) && T >= 1, `frames must be a positive integer, got ${T}`);
  const mnistSplit = split === 'train' ? 'train' : 'test';
  const mnist = loadMnist(mnistSplit);
  const classes = digitsByClass(mnistSplit);
  const seed = {
    train: opts.seed ?? 0,
    val: CAPTIONED_VAL_SEED,
    test: CAPTIONED_TEST_SEED,
    unseen: CAPTIONED_UNSEEN_SEED,
  }[split];
  const rng = new SeededRng(hashSeed(seed, index, 0xcafe));
  const mode = opts.digits ?? 'mixed';
  const K = mode === 'mixed' ? 1 + rng.int(2) : mode;
  const digits: number[] = [];
  const axes: Axis[] = [];
  for (let k = 0; k < K; k++) {
    let d: number;
    let a: Axis;
    if (split === 'unseen' && k === 0) {
      [d, a] = HELD_OUT[rng.int(HELD_OUT.length)]!;
    } else {
      d = rng.int(10);
      a = AXES[rng.int(2)]!;
      // train and test captions hold seen pairs only: a held-out pair moves on its other axis
      if (split !== 'unseen' && !(split === 'train' && opts.allPairs) && isHeldOut(d, a))
        a = a === 'horizontal' ? 'vertical' : 'horizontal';
    }
    digits.push(d);
    axes.push(a);
  }
  const lim = SIZE - DIGIT;
  const pos = new Float64Array(K * 2);
  const vel = new Float64Array(K);
  const images: Uint8Array[] = [];
  const digitIndex: number[] = [];
  for (let k = 0; k < K; k++) {
    const list = classes[digits[k]!]!;
    const i = list[rng.int(list.length)]!;
    digitIndex.push(i);
    images.push(mnist.images.subarray(i * 784, (i + 1) * 784));
    pos[2 * k] = rng.next() * lim;
    pos[2 * k + 1] = rng.next() * lim;
    vel[k] = (2 + rng.int(5)) * (rng.next() < 0.5 ? -1 : 1);
  }
  const frames = new Uint8Array(T * SIZE * SIZE);
  const positions = new Float64Array(T * K * 2);
  for (let t = 0; t < T; t++) {
    const canvas = frames.subarray(t * SIZE * SIZE, (t + 1) * SIZE * SIZE);
    for (let k = 0; k < K; k++) {
      positions.set(pos.subarray(2 * k, 2 * k + 2), (t * K + k) * 2);
      paste(canvas, SIZE, images[k]!, Math.trunc(pos[2 * k]!), Math.trunc(pos[2 * k + 1]!));
    }
    for (let k = 0; k < K; k++) {
      const j = 2 * k + (axes[k] === 'horizontal' ? 0 : 1);
      if (pos[j]! + vel[k]! < -2 || pos[j]! + vel[k]! > lim + 2) vel[k] = -vel[k]!;
      pos[j]! += vel[k]!;
    }
  }
  return { frames, caption: caption(digits, axes), digits, axes, digitIndex, positions };
}

/** Class names of the first digit's (digit, motion): label = 2·digit + (vertical ? 1 : 0). */
export const CAPTIONED_MNIST_CLASSES = Array.from({ length: 20 }, (_, i) => `${i >> 1} ${MOTION_WORDS[AXES[i & 1]!]}`);

/** The (digit, motion) label of the first digit: 2·digit + (vertical ? 1 : 0). */
const firstLabel = (digits: readonly number[], axes: readonly Axis[]): number =>
  2 * digits[0]! + (axes[0] === 'vertical' ? 1 : 0);

/**
 * The class of a clip for class-conditional generation (`labels.class`, one of CAPTIONED_MNIST_CLASSES): one-digit
 * clips only. A two-digit clip is none of the 20 digit×motion classes (its label would describe half of it), so it
 * has no class and class-conditional training leaves it out.
 */
export function captionedMnistClass(digits: readonly number[], axes: readonly Axis[]): number | undefined {
  return digits.length === 1 ? firstLabel(digits, axes) : undefined;
}

export class CaptionedMovingMnist implements CaptionedDataset {
  readonly length: number;
  readonly shape: ClipShape;
  readonly classes = CAPTIONED_MNIST_CLASSES;

  constructor(readonly opts: CaptionedMnistOptions = {}) {
    this.length = opts.length ?? 10000;
    check(
      Number.isInteger(this.length) && this.length > 0,
      `captioned Moving MNIST length must be a positive integer, got ${this.length}`,
    );
    const channels = opts.channels ?? 1;
    check(channels === 1 || channels === 3, `captioned Moving MNIST channels must be 1 or 3, got ${channels}`);
    check(
      opts.digits === undefined || opts.digits === 1 || opts.digits === 2 || opts.digits === 'mixed',
      `digits must be 1, 2 or "mixed", got ${opts.digits}`,
    );
    this.shape = { channels, frames: opts.frames ?? 5, height: SIZE, width: SIZE };
    loadMnist(opts.split === 'train' || opts.split === undefined ? 'train' : 'test');
  }

  get(index: number): CaptionedClip {
    check(
      Number.isInteger(index) && index >= 0 && index < this.length,
      `captioned Moving MNIST index ${index} out of range [0, ${this.length})`,
    );
    const s = captionedMnistSample(index, this.opts);
    const label = firstLabel(s.digits, s.axes);
    const k = captionedMnistClass(s.digits, s.axes);
    const labels = { digits: s.digits, axes: s.axes, ...(k !== undefined ? { class: k } : {}) };
    if (this.shape.channels === 1) return { data: s.frames, label, caption: s.caption, labels };
    const rgb = new Uint8Array(s.frames.length * 3);
    for (let i = 0; i < s.frames.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = s.frames[i]!;
    return { data: rgb, label, caption: s.caption, labels };
  }
}
