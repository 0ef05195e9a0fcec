import { VtokError } from './errors.js';

/**
 * Option parsers for commander (its argParser), for the CLI's own options and those a tokenizer kind declares
 * (src/tokenizers/kind.ts): every numeric option is parsed and range-checked at the command line, before any work. A
 * bad value fails with one line naming the option, the value and the allowed range (a VtokError, which commander passes
 * through to the CLI's one-line error report).
 */
export interface Range {
  min?: number;
  max?: number;
  /** The minimum itself is excluded (e.g. a learning rate > 0). */
  exclusiveMin?: boolean;
}

function rangeText(r: Range, integer: boolean): string {
  const kind = integer ? 'an integer' : 'a number';
  const lo = r.min === undefined ? '' : `${r.exclusiveMin ? '>' : '≥'} ${r.min}`;
  const hi = r.max === undefined ? '' : `≤ ${r.max}`;
  return `must be ${kind}${lo || hi ? ' ' : ''}${[lo, hi].filter(Boolean).join(' and ')}`;
}

function inRange(n: number, r: Range): boolean {
  if (r.min !== undefined && (r.exclusiveMin ? n <= r.min : n < r.min)) return false;
  return r.max === undefined || n <= r.max;
}

/** `--gray`, shared by the commands that feed clips to a tokenizer (the rule: io/clip fitChannels). */
export const GRAY_HELP = 'convert colour input to gray for a model trained on gray clips (refused otherwise)';

/** An integer option within `range`. */
export function int(option: string, range: Range = {}): (v: string) => number {
  return (v) => {
    const s = v.trim();
    const n = Number(s);
    if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(n) || !inRange(n, range))
      throw bad(option, rangeText(range, true), v);
    return n;
  };
}

/** A finite number option within `range` (decimal or exponent notation: 1e-3, 0.5). */
export function num(option: string, range: Range = {}): (v: string) => number {
  return (v) => {
    const s = v.trim();
    const n = Number(s);
    if (s === '' || !Number.isFinite(n) || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) || !inRange(n, range))
      throw bad(option, rangeText(range, false), v);
    return n;
  };
}

/** A comma-separated list of distinct integers, each within `range` (`1,2,3`). */
export function intList(option: string, range: Range = {}): (v: string) => number[] {
  const one = int(option, range);
  return (v) => {
    const parts = v.split(',').map((p) => p.trim());
    if (parts.some((p) => p === '')) throw bad(option, 'must be a comma-separated list of integers', v);
    const ns = parts.map(one);
    if (new Set(ns).size !== ns.length) throw bad(option, 'must name each value once', v);
    return ns;
  };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(option: string, ...values: T[]): (v: string) => T {
  return (v) => {
    if (!(values as string[]).includes(v)) {
      const list = values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}` : values[0];
      throw bad(option, `must be ${list}`, v);
    }
    return v as T;
  };
}

/** "64" (a square) or "WxH" like ffmpeg; returns [height, width] as the library takes it. */
export function cropSize(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m || Number(m[1]) <= 0 || (m[2] !== undefined && Number(m[2]) <= 0))
    throw bad('--crop', 'must be N or WxH (e.g. 128 or 160x128)', v);
  const w = Number(m[1]);
  return [m[2] === undefined ? w : Number(m[2]), w];
}

function bad(option: string, rule: string, v: string): VtokError {
  return new VtokError(`${option} ${rule}, got ${JSON.stringify(v)}`);
}
