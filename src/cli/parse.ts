import { VtokError } from '../util/errors.js';

/** Option parsers for commander that fail with a message naming the option. */
export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n <= 0) throw new VtokError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

export function nonNegNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new VtokError(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new VtokError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** "64" (a square) or "WxH" like ffmpeg; returns [height, width] as the library takes it. */
export function cropSize(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m || Number(m[1]) <= 0 || (m[2] !== undefined && Number(m[2]) <= 0)) throw new VtokError(`--crop must be N or WxH (e.g. 128 or 160x128), got ${JSON.stringify(v)}`);
  const w = Number(m[1]);
  return [m[2] === undefined ? w : Number(m[2]), w];
}
