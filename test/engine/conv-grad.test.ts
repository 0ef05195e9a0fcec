import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The convolution VJPs (dx as stride-1 or phase-split convolutions, dw by im2col + GEMM) against independent
 * references: dx against ORT's own ConvTranspose of the output gradient, dw against a plain-JS correlation.
 */
const rng = new Rng(11);
const rand = (shape: number[]) => E.tensor(rng.normal(shape.reduce((a, b) => a * b, 1)), shape);

interface Case {
  x: number[];
  w: number[];
  stride: number[];
  pad: [number, number][];
  dilation: number[];
  groups: number;
}

/** dw[o, ci, k] = Σ_{n, p} g[n, o, p] · xpad[n, g·Cin/G + ci, s·p + d·k] by direct loops (any rank). */
function refWeightGrad(x: Tensor, g: Tensor, c: Case): Float64Array {
  const [n, cin, ...sx] = x.shape as [number, number, ...number[]];
  const [, cout, ...sg] = g.shape as [number, number, ...number[]];
  const k = c.w.slice(2);
  const cinG = cin / c.groups,
    coutG = cout / c.groups;
  const xd = x.data as Float32Array,
    gd = g.data as Float32Array;
  const strides = (s: readonly number[]) => s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));
  const xs = strides(sx),
    gsd = strides(sg),
    ks = strides(k);
  const K = k.reduce((a, b) => a * b, 1),
    P = sg.reduce((a, b) => a * b, 1),
    X = sx.reduce((a, b) => a * b, 1);
  const out = new Float64Array(cout * cinG * K);
  for (let o = 0; o < cout; o++) {
    const grp = Math.floor(o / coutG);
    for (let ci = 0; ci < cinG; ci++) {
      for (let kk = 0; kk < K; kk++) {
        const kidx = ks.map((st, i) => Math.floor(kk / st) % k[i]!);
        let acc = 0;
        for (let b = 0; b < n; b++) {
          for (let p = 0; p < P; p++) {
            let off = 0,
              ok = true;
            for (let i = 0; i < sg.length; i++) {
              const pi = Math.floor(p / gsd[i]!) % sg[i]!;
              const xi = c.stride[i]! * pi + c.dilation[i]! * kidx[i]! - c.pad[i]![0];
              if (xi < 0 || xi >= sx[i]!) {
                ok = false;
                break;
              }
              off += xi * xs[i]!;
            }
            if (ok) acc += gd[(b * cout + o) * P + p]! * xd[(b * cin + grp * cinG + ci) * X + off]!;
          }
        }
        out[(o * cinG + ci) * K + kk] = acc;
      }
    }
  }
  return out;
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(got.length, want.length, `${what} length`);
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= tol * scale))
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
  }
}

const cases: [string, Case][] = [
  ['1d stride 1 pad 1', { x: [2, 3, 7], w: [4, 3, 3], stride: [1], pad: [[1, 1]], dilation: [1], groups: 1 }],
  ['1d dilation 2', { x: [1, 2, 9], w: [3, 2, 3], stride: [1], pad: [[2, 1]], dilation: [2], groups: 1 }],
  ['1d stride 3 > kernel 2', { x: [2, 2, 11], w: [3, 2, 2], stride: [3], pad: [[1, 0]], dilation: [1], groups: 1 }],
  ['1d stride 2 kernel 4 pad 3', { x: [1, 2, 10], w: [2, 2, 4], stride: [2], pad: [[3, 2]], dilation: [1], groups: 1 }],
  [
    '2d stride 2 groups 2 batch 2',
    {
      x: [2, 4, 7, 6],
      w: [6, 2, 3, 3],
      stride: [2, 2],
      pad: [
        [1, 1],
        [0, 1],
      ],
      dilation: [1, 1],
      groups: 2,
    },
  ],
  [
    '2d stride (1,3) big pad',
    {
      x: [1, 2, 5, 8],
      w: [3, 2, 3, 3],
      stride: [1, 3],
      pad: [
        [2, 2],
        [4, 0],
      ],
      dilation: [1, 1],
      groups: 1,
    },
  ],
  [
    '2d pad larger than kernel (fallback)',
    {
      x: [1, 2, 5, 5],
      w: [2, 2, 2, 2],
      stride: [1, 1],
      pad: [
        [2, 2],
        [0, 0],
      ],
      dilation: [1, 1],
      groups: 1,
    },
  ],
  [
    '3d causal stride (1,2,2)',
    {
      x: [1, 3, 4, 7, 6],
      w: [4, 3, 3, 3, 3],
      stride: [1, 2, 2],
      pad: [
        [2, 0],
        [1, 1],
        [1, 1],
      ],
      dilation: [1, 1, 1],
      groups: 1,
    },
  ],
  [
    '3d stride 2 dilation 2 (fallback)',
    {
      x: [1, 2, 5, 7, 7],
      w: [2, 2, 2, 2, 2],
      stride: [1, 2, 2],
      pad: [
        [0, 0],
        [1, 1],
        [1, 1],
      ],
      dilation: [1, 2, 2],
      groups: 1,
    },
  ],
  [
    '3d 1x1x1',
    {
      x: [2, 4, 3, 4, 4],
      w: [5, 4, 1, 1, 1],
      stride: [1, 1, 1],
      pad: [
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      dilation: [1, 1, 1],
      groups: 1,
    },
  ],
];

describe('convolution gradients', () => {
  for (const [name, c] of cases) {
    it(name, () => {
      const x = rand(c.x),
        w = rand(c.w);
      const o = { stride: c.stride, padding: c.pad, dilation: c.dilation, groups: c.groups };
      const y = E.conv(x, w, null, o);
      const gy = rand([...y.shape]);
      const [, [dx, dw]] = E.valueAndGrad((a: Tensor, b: Tensor) => E.sum(E.mul(E.conv(a, b, null, o), gy)), {
        argnums: [0, 1],
      })(x, w) as [Tensor, Tensor[]];
      const k = c.w.slice(2);
      const outputPadding = k.map(
        (kk, i) =>
          c.x[2 + i]! -
          ((y.shape[2 + i]! - 1) * c.stride[i]! + c.dilation[i]! * (kk - 1) + 1 - c.pad[i]![0] - c.pad[i]![1]),
      );
      const dxRef = E.convTranspose(gy, w, null, { ...o, outputPadding });
      assert.deepEqual([...dx!.shape], c.x);
      close(dx!.data as Float32Array, dxRef.data as Float32Array, 'dx');
      assert.deepEqual([...dw!.shape], c.w);
      close(dw!.data as Float32Array, refWeightGrad(x, gy, c), 'dw');
    });
  }
});

describe('zero pad folded into conv', () => {
  it('conv(pad(x)) traces to the padded conv, with the same value and gradients', () => {
    const x = rand([1, 2, 3, 5, 5]),
      w = rand([3, 2, 3, 3, 3]),
      b = rand([3]);
    const padded = (p: Tensor, q: Tensor) =>
      E.conv(
        E.pad(p, [
          [2, 0],
          [1, 1],
          [1, 1],
        ]),
        q,
        b,
        { stride: [1, 2, 2] },
      );
    const direct = (p: Tensor, q: Tensor) =>
      E.conv(p, q, b, {
        stride: [1, 2, 2],
        padding: [
          [2, 0],
          [1, 1],
          [1, 1],
        ],
      });
    const tr = E.trace((p, q) => padded(p as Tensor, q as Tensor), [x, w]);
    const convNode = tr.graph.nodes.find((nd) => nd.op.name === 'conv')!;
    assert.deepEqual((convNode.attrs as { padding: unknown }).padding, [
      [2, 0],
      [1, 1],
      [1, 1],
    ]);
    const loss = (f: typeof padded) => (p: Tensor, q: Tensor) => E.sum(E.square(f(p, q)));
    const [l1, [dx1, dw1]] = E.valueAndGrad(loss(padded), { argnums: [0, 1] })(x, w) as [Tensor, Tensor[]];
    const [l2, [dx2, dw2]] = E.valueAndGrad(loss(direct), { argnums: [0, 1] })(x, w) as [Tensor, Tensor[]];
    close(l1.data as Float32Array, l2.data as Float32Array, 'loss', 1e-6);
    close(dx1!.data as Float32Array, dx2!.data as Float32Array, 'dx', 1e-6);
    close(dw1!.data as Float32Array, dw2!.data as Float32Array, 'dw', 1e-6);
  });
});
