/**
 * Plain-JS reference implementations for op tests: small, slow, obviously correct loops over row-major arrays.
 */
export class Arr {
  readonly strides: number[];
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {
    this.strides = strides(shape);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error('Arr: size mismatch');
  }
  at(idx: number[]): number {
    let o = 0;
    for (let i = 0; i < idx.length; i++) o += idx[i]! * this.strides[i]!;
    return this.data[o]!;
  }
  static from(shape: number[], fn: (idx: number[]) => number): Arr {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = fn(unravel(i, shape));
    return new Arr(shape, data);
  }
}

export function strides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1]!;
  return s;
}

export function unravel(i: number, shape: number[]): number[] {
  const idx = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

export function bshape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => Math.max(a[a.length - n + i] ?? 1, b[b.length - n + i] ?? 1));
}

function bidx(idx: number[], shape: number[]): number[] {
  const off = idx.length - shape.length;
  return shape.map((d, i) => (d === 1 ? 0 : idx[off + i]!));
}

export function map(a: Arr, fn: (x: number) => number): Arr {
  return new Arr(a.shape, a.data.map(fn));
}

export function zip(a: Arr, b: Arr, fn: (x: number, y: number) => number): Arr {
  const s = bshape(a.shape, b.shape);
  return Arr.from(s, (i) => fn(a.at(bidx(i, a.shape)), b.at(bidx(i, b.shape))));
}

export function reduce(a: Arr, axes: number[], keepdims: boolean, fn: (vals: number[]) => number): Arr {
  const outShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  const os = strides(outShape);
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape);
    let o = 0;
    idx.forEach((v, d) => {
      o += (axes.includes(d) ? 0 : v) * os[d]!;
    });
    if (!groups.has(o)) groups.set(o, []);
    groups.get(o)!.push(a.data[i]!);
  }
  const data = new Float64Array(outShape.reduce((x, y) => x * y, 1));
  for (const [o, vals] of groups) data[o] = fn(vals);
  return new Arr(keepdims ? outShape : a.shape.filter((_, i) => !axes.includes(i)), data);
}

export function matmul(a: Arr, b: Arr): Arr {
  const [m, k] = a.shape.slice(-2) as [number, number],
    n = b.shape[b.shape.length - 1]!;
  const batch = bshape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return Arr.from([...batch, m, n], (idx) => {
    const bi = idx.slice(0, -2),
      i = idx[idx.length - 2]!,
      j = idx[idx.length - 1]!;
    let s = 0;
    for (let t = 0; t < k; t++)
      s += a.at([...bidx(bi, a.shape.slice(0, -2)), i, t]) * b.at([...bidx(bi, b.shape.slice(0, -2)), t, j]);
    return s;
  });
}

export interface ConvRef {
  stride: number[];
  pad: [number, number][];
  dilation: number[];
  groups: number;
}

/** Direct convolution: y[n,co,o] = Σ x[n,ci,o·s + k·d − p] w[co,ci,k] + b[co]. */
export function conv(x: Arr, w: Arr, b: Arr | null, c: ConvRef): Arr {
  const [N, Cin, ...S] = x.shape as [number, number, ...number[]],
    [Cout, CinG, ...K] = w.shape as [number, number, ...number[]];
  const G = c.groups,
    coutG = Cout / G;
  const O = K.map(
    (k, i) => Math.floor((S[i]! + c.pad[i]![0] + c.pad[i]![1] - c.dilation[i]! * (k - 1) - 1) / c.stride[i]!) + 1,
  );
  void Cin;
  return Arr.from([N, Cout, ...O], ([n, co, ...o]) => {
    const g = Math.floor(co! / coutG);
    let s = b ? b.data[co!]! : 0;
    const kn = K.reduce((a, v) => a * v, 1);
    for (let ci = 0; ci < CinG; ci++) {
      for (let kk = 0; kk < kn; kk++) {
        const k = unravel(kk, K);
        const pos = o.map((oi, i) => oi * c.stride[i]! + k[i]! * c.dilation[i]! - c.pad[i]![0]);
        if (pos.some((p, i) => p < 0 || p >= S[i]!)) continue;
        s += x.at([n!, g * CinG + ci, ...pos]) * w.at([co!, ci, ...k]);
      }
    }
    return s;
  });
}

/** Transposed convolution as the scatter it is: y[n,co,i·s + k·d − p] += x[n,ci,i] w[ci,co,k]. */
export function convTranspose(x: Arr, w: Arr, b: Arr | null, c: ConvRef & { outputPadding: number[] }): Arr {
  const [N, Cin, ...S] = x.shape as [number, number, ...number[]],
    [, CoutG, ...K] = w.shape as [number, number, ...number[]];
  const G = c.groups,
    cinG = Cin / G,
    Cout = CoutG * G;
  const O = K.map(
    (k, i) =>
      c.stride[i]! * (S[i]! - 1) + c.outputPadding[i]! + c.dilation[i]! * (k - 1) + 1 - c.pad[i]![0] - c.pad[i]![1],
  );
  const out = new Arr([N, Cout, ...O], new Float64Array(N * Cout * O.reduce((a, v) => a * v, 1)));
  const os = strides(out.shape);
  for (let xi = 0; xi < x.data.length; xi++) {
    const [n, ci, ...i] = unravel(xi, x.shape) as [number, number, ...number[]];
    const g = Math.floor(ci / cinG);
    for (let co = 0; co < CoutG; co++) {
      for (let kk = 0; kk < K.reduce((a, v) => a * v, 1); kk++) {
        const k = unravel(kk, K);
        const pos = i.map((ii, d) => ii * c.stride[d]! + k[d]! * c.dilation[d]! - c.pad[d]![0]);
        if (pos.some((p, d) => p < 0 || p >= O[d]!)) continue;
        const o = [n, g * CoutG + co, ...pos].reduce((a, v, d) => a + v * os[d]!, 0);
        out.data[o]! += x.data[xi]! * w.at([ci, co, ...k]);
      }
    }
  }
  if (b) for (let o = 0; o < out.data.length; o++) out.data[o]! += b.data[unravel(o, out.shape)[1]!]!;
  return out;
}

/**
 * erf to ~1e-7 (Abramowitz & Stegun 7.1.26 is too coarse; this is the W. J. Cody-style series/continued fraction via
 * high-order rational).
 */
export function erf(x: number): number {
  // Series for small |x|, complementary continued fraction otherwise: both converge to double precision.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax,
      term = ax;
    for (let n = 1; n < 60; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}
