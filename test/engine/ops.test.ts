import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import * as R from './reference.js';
import { Arr } from './reference.js';

/**
 * Every op: eager values against a plain-JS reference on small random inputs, and (for differentiable ops) a
 * finite-difference check of the traced reverse-mode gradient, broadcasting cases included.
 */
const rng = new Rng(7);

// Record which VJP rules the checks below run, so that a new differentiable op without a check fails the suite.
const exercised = new Set<string>();
for (const op of E.registry.values()) {
  const vjp = op.vjp;
  if (typeof vjp === 'function') {
    op.vjp = (cts, node, needs) => {
      exercised.add(op.name);
      return vjp.call(op, cts, node, needs);
    };
  }
}
after(() => {
  const missing = [...E.registry.values()]
    .filter((op) => typeof op.vjp === 'function' && !exercised.has(op.name))
    .map((op) => op.name);
  assert.deepEqual(missing, [], `differentiable ops without a gradient check: ${missing.join(', ')}`);
});

/** Random float32 tensor and its float64 reference copy; `away` keeps values off kinks such as |x| < away. */
function rand(shape: number[], lo = -1, hi = 1, away = 0, dtype: 'float32' | 'float64' = 'float32'): [Tensor, Arr] {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = rng.uniform(n);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = lo + (hi - lo) * u[i]!;
    if (away > 0 && Math.abs(x) < away) x = x < 0 ? x - away : x + away;
    v[i] = x;
  }
  return [E.tensor(v, shape, dtype), new Arr(shape, Float64Array.from(v))];
}

function assertClose(t: Tensor, ref: Arr, tol = 1e-5, what = ''): void {
  assert.deepEqual([...t.shape], ref.shape, `${what} shape`);
  const d = E.toArray(t);
  for (let i = 0; i < d.length; i++) {
    const e = ref.data[i]!;
    if (!(Math.abs(d[i]! - e) <= tol * Math.max(1, Math.abs(e)))) {
      assert.fail(`${what} element ${i}: got ${d[i]}, expected ${e}`);
    }
  }
}

function assertGrad(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { wrt?: number[]; tol?: number; eps?: number } = {},
): void {
  const r = E.gradcheck(f, inputs, { wrt: opts.wrt, eps: opts.eps ?? 1e-2, directions: 3 });
  assert.ok(r.maxError < (opts.tol ?? 1e-2), `gradient check failed: ${JSON.stringify(r.checks)}`);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('elementwise unary', () => {
  const cases: [string, (x: Tensor) => Tensor, (x: number) => number, number, number, number?][] = [
    ['neg', E.neg, (x) => -x, -1, 1],
    ['abs', E.abs, Math.abs, -1, 1, 0.1],
    ['exp', E.exp, Math.exp, -1, 1],
    ['log', E.log, Math.log, 0.2, 2],
    ['sqrt', E.sqrt, Math.sqrt, 0.2, 2],
    ['rsqrt', E.rsqrt, (x) => 1 / Math.sqrt(x), 0.2, 2],
    ['reciprocal', E.reciprocal, (x) => 1 / x, 0.3, 2],
    ['square', E.square, (x) => x * x, -1, 1],
    ['tanh', E.tanh, Math.tanh, -2, 2],
    ['sigmoid', E.sigmoid, sigmoid, -3, 3],
    ['relu', E.relu, (x) => Math.max(0, x), -1, 1, 0.1],
    ['silu', E.silu, (x) => x * sigmoid(x), -3, 3],
    ['gelu', (x) => E.gelu(x), (x) => 0.5 * x * (1 + R.erf(x / Math.SQRT2)), -3, 3],
    [
      'geluTanh',
      (x) => E.gelu(x, 'tanh'),
      (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
      -3,
      3,
    ],
    ['softplus', E.softplus, (x) => Math.log1p(Math.exp(x)), -3, 3],
    ['erf', E.erf, R.erf, -2, 2],
    ['sin', E.sin, Math.sin, -3, 3],
    ['cos', E.cos, Math.cos, -3, 3],
    ['clamp', (x) => E.clamp(x, -0.5, 0.5), (x) => Math.min(0.5, Math.max(-0.5, x)), -1, 1],
  ];
  for (const [name, f, ref, lo, hi, away] of cases) {
    it(name, () => {
      const [x, xr] = rand([3, 4], lo, hi, away);
      assertClose(f(x), R.map(xr, ref), 1e-5, name);
      if (name === 'clamp') {
        // keep samples off the clamp edges for the finite difference
        const [y] = rand([3, 4], -0.4, 0.4);
        assertGrad(f, [y]);
      } else assertGrad(f, [x]);
    });
  }
  it('cast between float types passes gradients back', () => {
    const [x] = rand([3, 4], -1, 1, 0, 'float64');
    assertGrad((t) => E.cast(E.mul(E.cast(t, 'float32'), 3), 'float64'), [x], { eps: 1e-3 });
  });
  it('sign, floor and round have zero gradients away from their jumps', () => {
    const x = E.tensor([-1.7, -0.3, 0.2, 0.7, 1.3, 2.2], [6]);
    for (const f of [E.sign, E.floor, E.round]) {
      assertGrad(f, [x], { eps: 1e-2 });
      assert.deepEqual(E.toArray(E.grad((t: Tensor) => E.sum(E.mul(f(t), t)))(x) as Tensor), E.toArray(f(x)));
    }
  });
  it('sign, floor, round and cast have the right values', () => {
    const x = E.tensor([-1.5, -0.2, 0, 0.7, 2.5], [5]);
    assert.deepEqual(E.toArray(E.sign(x)), [-1, -1, 0, 1, 1]);
    assert.deepEqual(E.toArray(E.floor(x)), [-2, -1, 0, 0, 2]);
    assert.deepEqual(E.toArray(E.round(x)), [-2, -0, 0, 1, 2]);
    assert.deepEqual(E.toArray(E.cast(x, 'int64')), [-1, 0, 0, 0, 2]);
    assert.deepEqual(E.toArray(E.cast(E.greater(x, 0), 'float32')), [0, 0, 0, 1, 1]);
  });
});

describe('elementwise binary with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [
      [2, 3],
      [2, 3],
    ],
    [[2, 3], [3]],
    [
      [2, 1, 4],
      [3, 1],
    ],
    [[1], [2, 2]],
  ];
  const ops: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number, number, number][] = [
    ['add', E.add, (a, b) => a + b, -1, 1],
    ['sub', E.sub, (a, b) => a - b, -1, 1],
    ['mul', E.mul, (a, b) => a * b, -1, 1],
    ['div', E.div, (a, b) => a / b, 0.5, 2],
    ['pow', E.pow, (a, b) => a ** b, 0.5, 2],
    ['minimum', E.minimum, Math.min, -1, 1],
    ['maximum', E.maximum, Math.max, -1, 1],
  ];
  for (const [name, f, ref, lo, hi] of ops) {
    for (const [sa, sb] of shapes) {
      it(`${name} [${sa}] ∘ [${sb}]`, () => {
        const [a, ar] = rand(sa, lo, hi, 0, 'float64');
        const [b, br] = rand(sb, lo, hi, 0, 'float64');
        assertClose(f(a, b), R.zip(ar, br, ref), 1e-5, name);
        assertGrad(f, [a, b], { eps: 1e-5, tol: 1e-4 });
      });
    }
  }
  it('comparisons and logic', () => {
    const a = E.tensor([1, 2, 3], [3]);
    const b = E.tensor([2, 2, 2], [3]);
    assert.deepEqual(E.toArray(E.less(a, b)), [1, 0, 0]);
    assert.deepEqual(E.toArray(E.lessEqual(a, b)), [1, 1, 0]);
    assert.deepEqual(E.toArray(E.greater(a, b)), [0, 0, 1]);
    assert.deepEqual(E.toArray(E.greaterEqual(a, b)), [0, 1, 1]);
    assert.deepEqual(E.toArray(E.equal(a, b)), [0, 1, 0]);
    assert.deepEqual(E.toArray(E.notEqual(a, b)), [1, 0, 1]);
    const p = E.less(a, b),
      q = E.greater(a, 1);
    assert.deepEqual(E.toArray(E.logicalAnd(p, q)), [0, 0, 0]);
    assert.deepEqual(E.toArray(E.logicalOr(p, q)), [1, 1, 1]);
    assert.deepEqual(E.toArray(E.logicalXor(p, q)), [1, 1, 1]);
    assert.deepEqual(E.toArray(E.logicalNot(p)), [0, 1, 1]);
  });
  it('where broadcasts and routes gradients', () => {
    const [a, ar] = rand([2, 3]);
    const [b, br] = rand([3]);
    const c = E.greater(E.tensor([1, -1, 1, -1, 1, 1], [2, 3]), 0);
    const cr = [1, 0, 1, 0, 1, 1];
    assertClose(
      E.where(c, a, b),
      Arr.from([2, 3], ([i, j]) => (cr[i! * 3 + j!] ? ar.at([i!, j!]) : br.at([j!]))),
    );
    assertGrad((x, y) => E.where(c, x, y), [a, b]);
  });
  it('rejects shapes that do not broadcast, naming them', () => {
    assert.throws(() => E.add(E.zeros([2, 3]), E.zeros([4])), /\[2,3\] and \[4\] do not broadcast/);
  });
});

describe('reductions', () => {
  const [x, xr] = rand([2, 3, 4], -1, 1, 0, 'float64');
  const sumRef = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const cases: [string, (t: Tensor, ax: number[], k: boolean) => Tensor, (v: number[]) => number][] = [
    ['sum', E.sum, sumRef],
    ['mean', E.mean, (v) => sumRef(v) / v.length],
    ['max', E.max, (v) => Math.max(...v)],
    ['min', E.min, (v) => Math.min(...v)],
    ['logsumexp', E.logsumexp, (v) => Math.log(sumRef(v.map(Math.exp)))],
    [
      'variance',
      (t, ax, k) => E.variance(t, ax, k),
      (v) => {
        const m = sumRef(v) / v.length;
        return sumRef(v.map((y) => (y - m) ** 2)) / v.length;
      },
    ],
    [
      'variance (unbiased)',
      (t, ax, k) => E.variance(t, ax, k, 1),
      (v) => {
        const m = sumRef(v) / v.length;
        return sumRef(v.map((y) => (y - m) ** 2)) / (v.length - 1);
      },
    ],
  ];
  for (const [name, f, ref] of cases) {
    for (const [axes, keep] of [
      [[1], false],
      [[0, 2], true],
      [[0, 1, 2], false],
      [[-1], true],
    ] as [number[], boolean][]) {
      it(`${name} over [${axes}] keepdims=${keep}`, () => {
        const norm = axes.map((a) => (a < 0 ? a + 3 : a));
        assertClose(f(x, axes, keep), R.reduce(xr, norm, keep, ref), 1e-5, name);
        assertGrad((t) => f(t, axes, keep), [x], { eps: 1e-5, tol: 1e-4 });
      });
    }
  }
  for (const [reverse, exclusive] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    it(`cumsum reverse=${reverse} exclusive=${exclusive}`, () => {
      const got = E.toArray(E.cumsum(x, 1, { reverse, exclusive }));
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++)
          for (let k = 0; k < 4; k++) {
            let want = 0;
            for (let m = 0; m < 3; m++)
              if (reverse ? m > j || (m === j && !exclusive) : m < j || (m === j && !exclusive))
                want += xr.at([i, m, k]);
            assert.ok(
              Math.abs(got[(i * 3 + j) * 4 + k]! - want) < 1e-9,
              `element ${i},${j},${k}: ${got[(i * 3 + j) * 4 + k]} vs ${want}`,
            );
          }
      assertGrad((t) => E.cumsum(t, -1, { reverse, exclusive }), [x], { eps: 1e-5, tol: 1e-4 });
    });
  }
  it('a scalar int64 constant and a one-element list of the same value stay distinct in one graph', () => {
    // cumsum's axis is a 0-d constant, slice's axes a 1-d one: both "1" here.
    const f = E.jit((t: Tensor) => E.narrow(E.cumsum(t, 1), 1, 1, 2));
    const got = E.toArray(f(E.tensor([1, 2, 3, 4, 5, 6], [2, 3])) as Tensor);
    assert.deepEqual(Array.from(got), [3, 6, 9, 15]);
  });
  it('argmax and argmin', () => {
    const t = E.tensor([1, 5, 2, 7, 0, 3], [2, 3]);
    assert.deepEqual(E.toArray(E.argmax(t, 1)), [1, 0]);
    assert.deepEqual(E.toArray(E.argmin(t, 1)), [0, 1]);
    assert.deepEqual([...E.argmax(t, 0, true).shape], [1, 3]);
  });
});

describe('matmul', () => {
  for (const [sa, sb] of [
    [
      [3, 4],
      [4, 2],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
    [
      [2, 1, 3, 4],
      [3, 4, 2],
    ],
  ] as [number[], number[]][]) {
    it(`[${sa}] @ [${sb}]`, () => {
      const [a, ar] = rand(sa);
      const [b, br] = rand(sb);
      assertClose(E.matmul(a, b), R.matmul(ar, br), 1e-5);
      assertGrad(E.matmul, [a, b]);
    });
  }
  it('linear uses the out×in weight layout', () => {
    const [x, xr] = rand([2, 3]);
    const [w, wr] = rand([4, 3]);
    const [b, br] = rand([4]);
    const ref = R.zip(
      R.matmul(
        xr,
        Arr.from([3, 4], ([i, j]) => wr.at([j!, i!])),
      ),
      br,
      (p, q) => p + q,
    );
    assertClose(E.linear(x, w, b), ref, 1e-5);
    assertGrad(E.linear, [x, w, b]);
  });
});

describe('convolution', () => {
  const cases: {
    name: string;
    x: number[];
    w: number[];
    stride: number[];
    pad: [number, number][];
    dilation: number[];
    groups: number;
  }[] = [
    { name: '1d', x: [2, 2, 7], w: [3, 2, 3], stride: [1], pad: [[1, 1]], dilation: [1], groups: 1 },
    {
      name: '1d stride 2 dilation 2 asymmetric pad',
      x: [1, 2, 9],
      w: [2, 2, 3],
      stride: [2],
      pad: [[2, 0]],
      dilation: [2],
      groups: 1,
    },
    {
      name: '2d groups 2',
      x: [1, 4, 5, 6],
      w: [4, 2, 3, 3],
      stride: [1, 2],
      pad: [
        [1, 1],
        [0, 1],
      ],
      dilation: [1, 1],
      groups: 2,
    },
    {
      name: '3d causal stride',
      x: [1, 2, 4, 5, 5],
      w: [3, 2, 3, 3, 3],
      stride: [1, 2, 2],
      pad: [
        [2, 0],
        [1, 1],
        [1, 1],
      ],
      dilation: [1, 1, 1],
      groups: 1,
    },
  ];
  for (const c of cases) {
    it(`conv ${c.name}`, () => {
      const [x, xr] = rand(c.x);
      const [w, wr] = rand(c.w);
      const [b, br] = rand([c.w[0]!]);
      const o = { stride: c.stride, padding: c.pad, dilation: c.dilation, groups: c.groups };
      assertClose(
        E.conv(x, w, b, o),
        R.conv(xr, wr, br, { stride: c.stride, pad: c.pad, dilation: c.dilation, groups: c.groups }),
        1e-4,
      );
      assertGrad((p, q, r) => E.conv(p, q, r, o), [x, w, b]);
    });
  }
  const tcases: {
    name: string;
    x: number[];
    w: number[];
    stride: number[];
    pad: [number, number][];
    dilation: number[];
    groups: number;
    op: number[];
  }[] = [
    { name: '1d stride 2', x: [2, 2, 4], w: [2, 3, 3], stride: [2], pad: [[1, 1]], dilation: [1], groups: 1, op: [1] },
    {
      name: '2d groups 2',
      x: [1, 4, 3, 3],
      w: [4, 1, 3, 2],
      stride: [2, 1],
      pad: [
        [0, 1],
        [1, 0],
      ],
      dilation: [1, 1],
      groups: 2,
      op: [0, 0],
    },
    {
      name: '3d stride 2',
      x: [1, 2, 2, 3, 3],
      w: [2, 2, 2, 3, 3],
      stride: [1, 2, 2],
      pad: [
        [0, 0],
        [1, 1],
        [1, 1],
      ],
      dilation: [1, 1, 1],
      groups: 1,
      op: [0, 1, 1],
    },
  ];
  for (const c of tcases) {
    it(`convTranspose ${c.name}`, () => {
      const [x, xr] = rand(c.x);
      const [w, wr] = rand(c.w);
      const [b, br] = rand([c.w[1]! * c.groups]);
      const o = { stride: c.stride, padding: c.pad, dilation: c.dilation, groups: c.groups, outputPadding: c.op };
      assertClose(E.convTranspose(x, w, b, o), R.convTranspose(xr, wr, br, { ...o, pad: c.pad }), 1e-4);
      assertGrad((p, q, r) => E.convTranspose(p, q, r, o), [x, w, b]);
    });
  }
});

describe('movement', () => {
  const [x, xr] = rand([2, 3, 4]);
  it('reshape with -1, squeeze, unsqueeze, flatten', () => {
    assert.deepEqual([...E.reshape(x, [4, -1]).shape], [4, 6]);
    assert.deepEqual(E.toArray(E.reshape(x, [24])), Array.from(xr.data, Math.fround));
    assert.deepEqual([...E.unsqueeze(x, 1).shape], [2, 1, 3, 4]);
    assert.deepEqual([...E.squeeze(E.unsqueeze(x, -1)).shape], [2, 3, 4]);
    assert.deepEqual([...E.flatten(x, 1).shape], [2, 12]);
    assertGrad((t) => E.reshape(t, [6, 4]), [x]);
  });
  it('transpose', () => {
    assertClose(
      E.transpose(x, [2, 0, 1]),
      Arr.from([4, 2, 3], ([a, b, c]) => xr.at([b!, c!, a!])),
    );
    assertGrad((t) => E.transpose(t, [2, 0, 1]), [x]);
  });
  it('broadcastTo and tile', () => {
    const [y, yr] = rand([3, 1]);
    assertClose(
      E.broadcastTo(y, [2, 3, 4]),
      Arr.from([2, 3, 4], ([, b]) => yr.at([b!, 0])),
    );
    assertGrad((t) => E.broadcastTo(t, [2, 3, 4]), [y]);
    assertClose(
      E.tile(y, [2, 3]),
      Arr.from([6, 3], ([a, b]) => yr.at([a! % 3, 0]) + 0 * b!),
    );
    assertGrad((t) => E.tile(t, [2, 3]), [y]);
  });
  it('slice with steps, negative steps and flip', () => {
    assertClose(
      E.slice(x, { 1: [1, 3], 2: [0, null, 2] }),
      Arr.from([2, 2, 2], ([a, b, c]) => xr.at([a!, b! + 1, 2 * c!])),
    );
    assertGrad((t) => E.slice(t, { 1: [1, 3], 2: [0, null, 2] }), [x]);
    assertClose(
      E.slice(x, { 2: [null, null, -1] }),
      Arr.from([2, 3, 4], ([a, b, c]) => xr.at([a!, b!, 3 - c!])),
    );
    assertClose(
      E.flip(x, [0, 2]),
      Arr.from([2, 3, 4], ([a, b, c]) => xr.at([1 - a!, b!, 3 - c!])),
    );
    assertGrad((t) => E.flip(t, [0, 2]), [x]);
    assertClose(
      E.slice(x, { 2: [-1, 0, -2] }),
      Arr.from([2, 3, 2], ([a, b, c]) => xr.at([a!, b!, 3 - 2 * c!])),
    );
    assertGrad((t) => E.slice(t, { 2: [-1, 0, -2] }), [x]);
  });
  it('concat, stack and split', () => {
    const [y, yr] = rand([2, 2, 4]);
    assertClose(
      E.concat([x, y], 1),
      Arr.from([2, 5, 4], ([a, b, c]) => (b! < 3 ? xr.at([a!, b!, c!]) : yr.at([a!, b! - 3, c!]))),
    );
    assertGrad((p, q) => E.concat([p, q], 1), [x, y]);
    const [z] = rand([2, 3, 4]);
    assert.deepEqual([...E.stack([x, z], 1).shape], [2, 2, 3, 4]);
    assertGrad((p, q) => E.stack([p, q], -1), [x, z]);
    const parts = E.split(x, [1, 3], 2);
    assertClose(
      parts[1]!,
      Arr.from([2, 3, 3], ([a, b, c]) => xr.at([a!, b!, c! + 1])),
    );
    assertGrad((t) => E.mul(E.split(t, [1, 3], 2)[1]!, 2), [x]);
    assertGrad(
      (t) => {
        const [p, q] = E.split(t, 2, 2);
        return E.mul(p!, q!);
      },
      [x],
    );
  });
  for (const mode of ['constant', 'edge', 'reflect'] as const) {
    it(`pad ${mode}`, () => {
      const src = (i: number, d: number, before: number) => {
        const j = i - before;
        if (mode === 'edge') return Math.min(Math.max(j, 0), d - 1);
        if (mode === 'reflect') return j < 0 ? -j : j >= d ? 2 * (d - 1) - j : j;
        return j;
      };
      const out = E.pad(
        x,
        [
          [0, 0],
          [1, 2],
          [2, 1],
        ],
        mode,
        0.5,
      );
      assertClose(
        out,
        Arr.from([2, 6, 7], ([a, b, c]) => {
          const bb = src(b!, 3, 1),
            cc = src(c!, 4, 2);
          if (mode === 'constant' && (bb < 0 || bb >= 3 || cc < 0 || cc >= 4)) return 0.5;
          return xr.at([a!, bb, cc]);
        }),
      );
      assertGrad(
        (t) =>
          E.pad(
            t,
            [
              [0, 0],
              [1, 2],
              [2, 1],
            ],
            mode,
            0.5,
          ),
        [x],
      );
    });
  }
  it('depthToSpace and spaceToDepth invert each other (2d and 3d) and match pixel_shuffle order', () => {
    const [v, vr] = rand([1, 8, 2, 3]);
    const d = E.depthToSpace(v, [2, 2]);
    // pixel_shuffle: out[n, c, h·r+i, w·r+j] = in[n, c·r² + i·r + j, h, w]
    assertClose(
      d,
      Arr.from([1, 2, 4, 6], ([n, c, h, w]) => vr.at([n!, c! * 4 + (h! % 2) * 2 + (w! % 2), h! >> 1, w! >> 1])),
    );
    assertClose(E.spaceToDepth(d, [2, 2]), vr);
    const [u, ur] = rand([1, 16, 2, 2, 3]);
    const d3 = E.depthToSpace(u, [2, 2, 2]);
    assert.deepEqual([...d3.shape], [1, 2, 4, 4, 6]);
    assertClose(E.spaceToDepth(d3, [2, 2, 2]), ur);
    assertGrad((t) => E.depthToSpace(t, [2, 2, 2]), [u]);
  });
});

describe('indexing', () => {
  it('gather / embedding with repeated indices', () => {
    const [table, tr] = rand([5, 3]);
    const ids = E.tensor([4, 0, 4, 2, 1, 4], [2, 3], 'int64');
    const idv = [4, 0, 4, 2, 1, 4];
    assertClose(
      E.embedding(table, ids),
      Arr.from([2, 3, 3], ([a, b, c]) => tr.at([idv[a! * 3 + b!]!, c!])),
    );
    assertGrad((t) => E.embedding(t, ids), [table]);
    const [x, xr] = rand([2, 5, 3]);
    const sel = E.tensor([3, 3, 0], [3], 'int64');
    assertClose(
      E.gather(x, sel, 1),
      Arr.from([2, 3, 3], ([a, b, c]) => xr.at([a!, [3, 3, 0][b!]!, c!])),
    );
    assertGrad((t) => E.gather(t, sel, 1), [x]);
  });
  it('takeAlongAxis and scatterAdd', () => {
    const [x, xr] = rand([2, 4]);
    const idx = E.tensor([3, 3, 0, 1, 2, 0], [2, 3], 'int64');
    const iv = [3, 3, 0, 1, 2, 0];
    assertClose(
      E.takeAlongAxis(x, idx, 1),
      Arr.from([2, 3], ([a, b]) => xr.at([a!, iv[a! * 3 + b!]!])),
    );
    assertGrad((t) => E.takeAlongAxis(t, idx, 1), [x]);
    const [src, sr] = rand([2, 3]);
    const expected = Arr.from(
      [2, 4],
      ([a, b]) => xr.at([a!, b!]) + [0, 1, 2].reduce((s, k) => s + (iv[a! * 3 + k] === b ? sr.at([a!, k]) : 0), 0),
    );
    assertClose(E.scatterAdd(x, 1, idx, src), expected);
    assertGrad((p, q) => E.scatterAdd(p, 1, idx, q), [x, src]);
  });
  it('oneHot', () => {
    const t = E.oneHot(E.tensor([2, 0], [2], 'int64'), 3);
    assert.deepEqual(E.toArray(t), [0, 0, 1, 1, 0, 0]);
  });
});

describe('nn ops', () => {
  it('softmax and logSoftmax', () => {
    const [x, xr] = rand([2, 5], -2, 2);
    const lse = R.reduce(xr, [1], true, (v) => Math.log(v.reduce((s, y) => s + Math.exp(y), 0)));
    assertClose(
      E.logSoftmax(x),
      R.zip(xr, lse, (a, b) => a - b),
    );
    assertClose(
      E.softmax(x),
      R.map(
        R.zip(xr, lse, (a, b) => a - b),
        Math.exp,
      ),
    );
    assertGrad((t) => E.softmax(t), [x]);
    assertGrad((t) => E.logSoftmax(t, 0), [x]);
  });
  it('layerNorm, groupNorm and rmsNorm', () => {
    const [x, xr] = rand([2, 3, 4], -2, 2);
    const [w] = rand([4]);
    const [b] = rand([4]);
    const norm = (a: Arr, axes: number[], eps: number) => {
      const m = R.reduce(a, axes, true, (v) => v.reduce((s, y) => s + y, 0) / v.length);
      const c = R.zip(a, m, (p, q) => p - q);
      const v = R.reduce(c, axes, true, (vs) => vs.reduce((s, y) => s + y * y, 0) / vs.length);
      return R.zip(c, v, (p, q) => p / Math.sqrt(q + eps));
    };
    assertClose(E.layerNorm(x, null, null, 1e-5), norm(xr, [2], 1e-5), 1e-4);
    assertGrad((p, q, r) => E.layerNorm(p, q, r), [x, w, b]);
    const [g, gr] = rand([2, 4, 3, 2], -2, 2);
    const [gw] = rand([4]);
    const [gb] = rand([4]);
    const grouped = norm(new Arr([2, 2, 12], gr.data), [2], 1e-5);
    assertClose(E.groupNorm(g, 2, null, null), new Arr([2, 4, 3, 2], grouped.data), 1e-4);
    assertGrad((p, q, r) => E.groupNorm(p, 2, q, r), [g, gw, gb]);
    const ms = R.reduce(xr, [2], true, (v) => v.reduce((s, y) => s + y * y, 0) / v.length);
    assertClose(
      E.rmsNorm(x, null, 1e-6),
      R.zip(xr, ms, (p, q) => p / Math.sqrt(q + 1e-6)),
      1e-4,
    );
    assertGrad((p, q) => E.rmsNorm(p, q), [x, w]);
  });
  for (const mask of ['none', 'causal', { prefix: 2 }, { window: 2 }] as const) {
    it(`attention with mask ${JSON.stringify(mask)}`, () => {
      const [q, qr] = rand([2, 4, 3]);
      const [k, kr] = rand([2, 4, 3]);
      const [v, vr] = rand([2, 4, 2]);
      const visible = (i: number, j: number) =>
        mask === 'none'
          ? true
          : mask === 'causal'
            ? j <= i
            : 'prefix' in mask
              ? j <= i || (j < 2 && i < 2)
              : Math.abs(i - j) < 2;
      const ref = Arr.from([2, 4, 2], ([n, i, d]) => {
        const s = [0, 1, 2, 3].map((j) =>
          visible(i!, j)
            ? [0, 1, 2].reduce((a, c) => a + qr.at([n!, i!, c]) * kr.at([n!, j, c]), 0) / Math.sqrt(3)
            : -Infinity,
        );
        const m = Math.max(...s);
        const e = s.map((y) => Math.exp(y - m));
        const z = e.reduce((a, b) => a + b, 0);
        return e.reduce((a, w, j) => a + (w / z) * vr.at([n!, j, d!]), 0);
      });
      assertClose(E.attention(q, k, v, { mask }), ref, 1e-5);
      assertGrad((a, b, c) => E.attention(a, b, c, { mask }), [q, k, v]);
    });
  }
  it('cross-entropy with label smoothing and ignore index', () => {
    const [logits, lr] = rand([4, 5], -2, 2);
    const t = [1, -100, 4, 0];
    const targets = E.tensor(t, [4], 'int64');
    const eps = 0.1;
    let total = 0,
      count = 0;
    for (let i = 0; i < 4; i++) {
      if (t[i] === -100) continue;
      const row = [0, 1, 2, 3, 4].map((j) => lr.at([i, j]));
      const lse = Math.log(row.reduce((s, y) => s + Math.exp(y), 0));
      const nll = lse - row[t[i]!]!;
      const smooth = lse - row.reduce((s, y) => s + y, 0) / 5;
      total += (1 - eps) * nll + eps * smooth;
      count++;
    }
    assertClose(
      E.crossEntropy(logits, targets, { labelSmoothing: eps }),
      new Arr([], Float64Array.of(total / count)),
      1e-5,
    );
    assertGrad((z) => E.crossEntropy(z, targets, { labelSmoothing: eps }), [logits]);
  });
  it('dropout keeps the expectation and is traced as fed noise', () => {
    const x = E.ones([200, 50]);
    // p = 0.3 is 77/256 within 2%: a byte mask, kept values scaled by 256/179; p = 0.01 is not: float noise.
    for (const [p, keptScale] of [
      [0.3, 256 / 179],
      [0.01, 1 / 0.99],
    ] as [number, number][]) {
      const y = E.toArray(E.dropout(x, p, true));
      const zeros = y.filter((v) => v === 0).length / y.length;
      assert.ok(Math.abs(zeros - p) < 0.02, `p=${p}: drop rate ${zeros}`);
      assert.ok(
        y.every((v) => v === 0 || Math.abs(v - keptScale) < 1e-6),
        `p=${p}: kept values scaled by ${keptScale}`,
      );
      const mean = y.reduce((a, b) => a + b, 0) / y.length;
      assert.ok(Math.abs(mean - 1) < 0.03, `p=${p}: mean ${mean}`);
    }
    assert.equal(E.dropout(x, 0.3, false), x);
    const f = E.jit((t: Tensor) => E.dropout(t, 0.5, true));
    const a = E.toArray(f(E.ones([64])) as Tensor),
      b = E.toArray(f(E.ones([64])) as Tensor);
    assert.notDeepEqual(a, b, 'a new mask per call');
  });
});

describe('gradient control', () => {
  it('stopGradient blocks, customVjp replaces the rule (straight-through)', () => {
    const [x] = rand([3]);
    const g1 = E.grad((t: Tensor) => E.sum(E.mul(E.stopGradient(t), t)))(x) as Tensor;
    assert.deepEqual(E.toArray(g1), E.toArray(x));
    // sign() has zero gradient; straight-through passes the gradient of the identity.
    const g2 = E.grad((t: Tensor) => E.sum(E.mul(E.straightThrough(E.sign(t), t), 3)))(x) as Tensor;
    assert.deepEqual(E.toArray(g2), [3, 3, 3]);
    const clippedGrad = E.customVjp(
      (t) => [E.mul(t, 2)],
      ([g]) => [E.clamp(g!, -0.5, 0.5)],
    );
    const g3 = E.grad((t: Tensor) => E.sum(E.mul(clippedGrad(t)[0]!, E.tensor([1, -2, 0.25], [3]))))(x) as Tensor;
    assert.deepEqual(E.toArray(g3), [0.5, -0.5, 0.25]);
  });
});

describe('op declarations', () => {
  it(
    'every op says whether it is differentiable, and asking ' + 'a gradient through one that is not names the reason',
    () => {
      // The type checker enforces the field: an op without `vjp` does not compile.
      // @ts-expect-error vjp is required
      const incomplete: E.OpDef<object> = { name: 'incomplete', infer: (i) => i, lower: () => {} };
      assert.ok(incomplete);
      for (const op of E.registry.values()) {
        assert.ok(typeof op.vjp === 'function' || typeof op.vjp.notDifferentiable === 'string', op.name);
      }
      const opaque = E.defineOp<object>({
        name: 'testOpaque',
        infer: (i) => i,
        lower: (ctx, ins, outs) => ctx.emit('Identity', ins, outs),
        vjp: E.notDifferentiable('a test op'),
      });
      const f = E.grad((x: Tensor) => E.sum(E.apply1(opaque, [x], {})));
      assert.throws(
        () => f(E.concrete(new Float32Array([1, 3, 2]), [3], 'float32')),
        /testOpaque is not differentiable \(a test op\)/,
      );
    },
  );
});
