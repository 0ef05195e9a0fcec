import { encodePng } from '../../io/png.js';
import { Canvas } from '../../train/curves.js';

/** One rate–distortion curve: points (bits per pixel, quality) joined in order of rate. */
export interface RdSeries {
  name: string;
  color: [number, number, number];
  points: { bpp: number; value: number }[];
}

/**
 * A rate–distortion plot as a PNG: bits per pixel on a log x axis (the rates span more than a decade), the metric
 * on y, one coloured line with dot markers per series, and a legend.
 */
export function plotRd(title: string, series: RdSeries[], opts: { width?: number; height?: number } = {}): Uint8Array {
  const W = opts.width ?? 640,
    H = opts.height ?? 420;
  const cv = new Canvas(W, H);
  const left = 70,
    right = W - 20,
    top = 40,
    bottom = H - 50;
  const all = series.flatMap((s) => s.points).filter((p) => p.bpp > 0 && Number.isFinite(p.value));
  cv.text(left, 12, title);
  if (all.length === 0) return encodePng({ width: W, height: H, data: cv.data });
  const lx = (v: number) => Math.log10(v);
  let x0 = Math.min(...all.map((p) => lx(p.bpp))),
    x1 = Math.max(...all.map((p) => lx(p.bpp)));
  let y0 = Math.min(...all.map((p) => p.value)),
    y1 = Math.max(...all.map((p) => p.value));
  if (x1 - x0 < 1e-6) [x0, x1] = [x0 - 0.5, x1 + 0.5];
  if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 1, y1 + 1];
  const padY = (y1 - y0) * 0.06;
  [y0, y1] = [y0 - padY, y1 + padY];
  const X = (bpp: number) => left + ((lx(bpp) - x0) / (x1 - x0)) * (right - left);
  const Y = (v: number) => bottom - ((v - y0) / (y1 - y0)) * (bottom - top);
  const grey: [number, number, number] = [170, 170, 170];
  cv.line(left, bottom, right, bottom, grey);
  cv.line(left, top, left, bottom, grey);
  // Decade and half-decade ticks on x, five ticks on y.
  for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (lx(v) < x0 - 1e-9 || lx(v) > x1 + 1e-9) continue;
      const x = X(v);
      cv.line(x, bottom, x, bottom + 4, grey);
      cv.text(x - 8, bottom + 8, String(Number(v.toPrecision(2))), 1);
    }
  }
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    cv.line(left - 4, Y(v), left, Y(v), grey);
    cv.text(4, Y(v) - 3, v.toPrecision(3), 1);
  }
  cv.text(right - 130, bottom + 22, 'bits per pixel log', 1);
  series.forEach((s, k) => {
    const pts = s.points.filter((p) => p.bpp > 0 && Number.isFinite(p.value)).sort((a, b) => a.bpp - b.bpp);
    for (let i = 1; i < pts.length; i++)
      cv.line(X(pts[i - 1]!.bpp), Y(pts[i - 1]!.value), X(pts[i]!.bpp), Y(pts[i]!.value), s.color);
    for (const p of pts)
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) cv.set(X(p.bpp) + dx, Y(p.value) + dy, s.color);
    const ly = top + 4 + k * 14;
    cv.line(left + 10, ly + 4, left + 30, ly + 4, s.color);
    cv.line(left + 10, ly + 5, left + 30, ly + 5, s.color);
    cv.text(left + 36, ly, s.name, 2, s.color);
  });
  return encodePng({ width: W, height: H, data: cv.data });
}
