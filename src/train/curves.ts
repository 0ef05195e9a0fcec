import { encodePng } from '../io/png.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Training curves as a PNG: one panel per metric (step on x; log-scale y when the values are positive and span
 * more than a decade), raw values faint and a moving average on top, with the metric's name and y range written
 * in a tiny bitmap font. Written atomically, so a viewer never sees half a file.
 */
export type Series = Map<string, { step: number; value: number }[]>;

// 3×5 glyphs, rows top to bottom, 3 bits per row (MSB = left).
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  a: [2, 5, 7, 5, 5],
  b: [6, 5, 6, 5, 6],
  c: [7, 4, 4, 4, 7],
  d: [6, 5, 5, 5, 6],
  e: [7, 4, 6, 4, 7],
  f: [7, 4, 6, 4, 4],
  g: [7, 4, 5, 5, 7],
  h: [5, 5, 7, 5, 5],
  i: [7, 2, 2, 2, 7],
  j: [1, 1, 1, 5, 7],
  k: [5, 5, 6, 5, 5],
  l: [4, 4, 4, 4, 7],
  m: [5, 7, 7, 5, 5],
  n: [6, 5, 5, 5, 5],
  o: [7, 5, 5, 5, 7],
  p: [7, 5, 7, 4, 4],
  q: [7, 5, 5, 7, 1],
  r: [6, 5, 6, 5, 5],
  s: [7, 4, 7, 1, 7],
  t: [7, 2, 2, 2, 2],
  u: [5, 5, 5, 5, 7],
  v: [5, 5, 5, 5, 2],
  w: [5, 5, 7, 7, 5],
  x: [5, 5, 2, 5, 5],
  y: [5, 5, 2, 2, 2],
  z: [7, 1, 2, 4, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  _: [0, 0, 0, 0, 7],
  ':': [0, 2, 0, 2, 0],
  '+': [0, 2, 7, 2, 0],
  '/': [1, 1, 2, 4, 4],
  ' ': [0, 0, 0, 0, 0],
};

export class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(255);
  }
  set(x: number, y: number, c: [number, number, number]): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set(c, (y * this.width + x) * 3);
  }
  line(x0: number, y0: number, x1: number, y1: number, c: [number, number, number]): void {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) this.set(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c);
  }
  text(x: number, y: number, s: string, scale = 2, c: [number, number, number] = [40, 40, 40]): void {
    for (const ch of s.toLowerCase()) {
      const g = FONT[ch] ?? FONT[' ']!;
      g.forEach((row, r) => {
        for (let b = 0; b < 3; b++) {
          if (!(row & (4 >> b))) continue;
          for (let dy = 0; dy < scale; dy++)
            for (let dx = 0; dx < scale; dx++) this.set(x + b * scale + dx, y + r * scale + dy, c);
        }
      });
      x += 4 * scale;
    }
  }
}

const fmt = (v: number) =>
  Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : v.toPrecision(3);

export function plotCurves(
  series: Series,
  opts: { panelWidth?: number; panelHeight?: number; columns?: number } = {},
): Uint8Array {
  const names = [...series.keys()].filter((k) => series.get(k)!.length > 0);
  const pw = opts.panelWidth ?? 360,
    ph = opts.panelHeight ?? 220;
  const cols = Math.max(1, Math.min(opts.columns ?? 3, names.length));
  const rows = Math.max(1, Math.ceil(names.length / cols));
  const cv = new Canvas(pw * cols, ph * rows);
  names.forEach((name, k) => {
    const pts = series.get(name)!.filter((p) => Number.isFinite(p.value));
    const ox = (k % cols) * pw,
      oy = Math.floor(k / cols) * ph;
    const left = ox + 12,
      right = ox + pw - 12,
      top = oy + 30,
      bottom = oy + ph - 24;
    cv.text(left, oy + 8, name);
    if (pts.length === 0) return;
    const vals = pts.map((p) => p.value);
    const lo = Math.min(...vals),
      hi = Math.max(...vals);
    const logY = lo > 0 && hi / lo > 10;
    const ty = (v: number) => (logY ? Math.log10(v) : v);
    const [ylo, yhi] = lo === hi ? [ty(lo) - 1, ty(hi) + 1] : [ty(lo), ty(hi)];
    const s0 = pts[0]!.step,
      s1 = Math.max(pts[pts.length - 1]!.step, s0 + 1);
    // One point (an evaluation made once) has no line to draw: centre it and mark it.
    const X = (s: number) => (pts.length === 1 ? (left + right) / 2 : left + ((s - s0) / (s1 - s0)) * (right - left));
    const Y = (v: number) => bottom - ((ty(v) - ylo) / (yhi - ylo)) * (bottom - top);
    cv.line(left, bottom, right, bottom, [160, 160, 160]);
    cv.line(left, top, left, bottom, [160, 160, 160]);
    for (let i = 1; i < pts.length; i++)
      cv.line(X(pts[i - 1]!.step), Y(pts[i - 1]!.value), X(pts[i]!.step), Y(pts[i]!.value), [180, 200, 235]);
    const win = Math.max(1, Math.round(pts.length / 30));
    let prev: [number, number] | null = null;
    for (let i = 0; i < pts.length; i++) {
      const w = pts.slice(Math.max(0, i - win + 1), i + 1);
      const m = logY
        ? 10 ** (w.reduce((a, p) => a + Math.log10(p.value), 0) / w.length)
        : w.reduce((a, p) => a + p.value, 0) / w.length;
      const cur: [number, number] = [X(pts[i]!.step), Y(m)];
      if (prev) cv.line(prev[0], prev[1], cur[0], cur[1], [20, 70, 170]);
      prev = cur;
    }
    if (pts.length === 1)
      for (let d = -3; d <= 3; d++)
        cv.line(X(s0) - 3, Y(pts[0]!.value) + d, X(s0) + 3, Y(pts[0]!.value) + d, [20, 70, 170]);
    cv.text(left + 4, top, `max ${fmt(hi)}`, 1);
    cv.text(left + 4, bottom - 8, `min ${fmt(lo)}${logY ? ' log' : ''}`, 1);
    cv.text(right - 60, bottom + 6, `step ${pts[pts.length - 1]!.step}`, 1);
  });
  return encodePng({ width: cv.width, height: cv.height, data: cv.data });
}

export function writeCurves(path: string, series: Series): void {
  writeFileAtomic(path, plotCurves(series));
}
