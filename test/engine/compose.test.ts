import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(11);
const randn = (shape: number[], std = 1) =>
  E.concrete(
    rng.normal(
      shape.reduce((a, b) => a * b, 1),
      0,
      std,
    ),
    shape,
    'float32',
  );

/** A pre-LN transformer block written with raw ops: LN → multi-head attention → residual → LN → MLP → residual. */
function attentionBlock(x: Tensor, wqkv: Tensor, wo: Tensor, w1: Tensor, w2: Tensor, g1: Tensor, b1: Tensor): Tensor {
  const [b, t, c] = x.shape as [number, number, number],
    h = 2,
    hd = c / h;
  const qkv = E.transpose(E.reshape(E.linear(E.layerNorm(x, g1, b1), wqkv), [b, t, 3, h, hd]), [2, 0, 3, 1, 4]);
  const [q, k, v] = E.split(qkv, 3, 0).map((z) => E.squeeze(z, 0));
  const att = E.reshape(E.transpose(E.attention(q!, k!, v!, { mask: 'causal' }), [0, 2, 1, 3]), [b, t, c]);
  const y = E.add(x, E.linear(att, wo));
  return E.add(y, E.linear(E.gelu(E.linear(E.layerNorm(y, null, null), w1)), w2));
}

/** A MAGVIT-style 3D residual block: x + conv(silu(GN(conv(silu(GN(x)))))) with causal temporal padding. */
function convBlock(x: Tensor, w1: Tensor, c1: Tensor, w2: Tensor, c2: Tensor, gw: Tensor, gb: Tensor): Tensor {
  const causal = (t: Tensor, w: Tensor, b: Tensor) =>
    E.conv(
      E.pad(t, [
        [2, 0],
        [1, 1],
        [1, 1],
      ]),
      w,
      b,
    );
  const h = causal(E.silu(E.groupNorm(x, 2, gw, gb)), w1, c1);
  return E.add(x, causal(E.silu(E.groupNorm(h, 2, null, null)), w2, c2));
}

describe('autodiff through compositions', () => {
  it('attention block matches finite differences', () => {
    const c = 8;
    const args = [
      randn([2, 5, c]),
      randn([3 * c, c], 0.3),
      randn([c, c], 0.3),
      randn([16, c], 0.3),
      randn([c, 16], 0.3),
      randn([c], 0.1),
      randn([c], 0.1),
    ];
    const r = E.gradcheck(attentionBlock, args, { eps: 1e-2, directions: 4 });
    assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
  });
  it('conv + group norm + SiLU residual block matches finite differences', () => {
    const c = 4;
    const args = [
      randn([1, c, 3, 4, 4]),
      randn([c, c, 3, 3, 3], 0.2),
      randn([c], 0.1),
      randn([c, c, 3, 3, 3], 0.2),
      randn([c], 0.1),
      randn([c], 0.1),
      randn([c], 0.1),
    ];
    const r = E.gradcheck(convBlock, args, { eps: 1e-2, directions: 4 });
    assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
  });
});

describe('compile', () => {
  it('eager and compiled runs give the same numbers', () => {
    const x = randn([2, 4, 3, 4, 4]);
    const ws = [
      randn([4, 4, 3, 3, 3], 0.2),
      randn([4], 0.1),
      randn([4, 4, 3, 3, 3], 0.2),
      randn([4], 0.1),
      randn([4], 0.1),
      randn([4], 0.1),
    ] as const;
    const eager = E.toArray(convBlock(x, ...ws));
    const compiled = E.toArray(E.jit(convBlock)(x, ...ws) as Tensor);
    const maxDiff = Math.max(...eager.map((v, i) => Math.abs(v - compiled[i]!)));
    assert.ok(maxDiff < 1e-5, `eager vs compiled differ by ${maxDiff}`);
  });
  it('caches one program per input signature', () => {
    const f = E.jit((a: Tensor, b: Tensor) => E.add(E.mul(a, b), 1));
    f(randn([2, 3]), randn([2, 3]));
    f(randn([2, 3]), randn([2, 3]));
    assert.equal(f.cacheSize, 1);
    f(randn([4, 3]), randn([4, 3]));
    assert.equal(f.cacheSize, 2);
    // dispose closes the sessions; the function still works, compiling again
    f.dispose();
    assert.equal(f.cacheSize, 0);
    assert.deepEqual(E.toArray(f(E.tensor([1, 2], [2]), E.tensor([3, 4], [2])) as Tensor), [4, 9]);
    assert.equal(f.cacheSize, 1);
  });
  it('returns nested outputs and takes nested inputs', () => {
    const f = E.jit((p: { a: Tensor; b: Tensor[] }) => ({ sum: E.add(p.a, p.b[0]!), prod: [E.mul(p.a, p.b[1]!)] }));
    const out = f({ a: E.tensor([1, 2], [2]), b: [E.tensor([3, 4], [2]), E.tensor([5, 6], [2])] }) as {
      sum: Tensor;
      prod: Tensor[];
    };
    assert.deepEqual(E.toArray(out.sum), [4, 6]);
    assert.deepEqual(E.toArray(out.prod[0]!), [5, 12]);
  });
  it('valueAndGrad returns the value, gradients per argument, and aux', () => {
    const f = (x: Tensor, y: Tensor) => [E.sum(E.mul(E.square(x), y)), E.mean(x)] as [Tensor, Tensor];
    const [v, [gx, gy], aux] = E.valueAndGrad(f, { argnums: [0, 1], hasAux: true })(
      E.tensor([1, 2], [2]),
      E.tensor([3, 4], [2]),
    ) as [Tensor, Tensor[], Tensor];
    assert.equal(E.item(v), 1 * 3 + 4 * 4);
    assert.deepEqual(E.toArray(gx!), [6, 16]);
    assert.deepEqual(E.toArray(gy!), [1, 4]);
    assert.equal(E.item(aux), 1.5);
  });
  it('exported ONNX reproduces the traced function in a fresh onnxruntime session', async () => {
    const c = 8;
    const args = [
      randn([2, 5, c]),
      randn([3 * c, c], 0.3),
      randn([c, c], 0.3),
      randn([16, c], 0.3),
      randn([c, 16], 0.3),
      randn([c], 0.1),
      randn([c], 0.1),
    ];
    const path = join(mkdtempSync(join(tmpdir(), 'vtok-')), 'block.onnx');
    E.exportOnnx(attentionBlock as (...a: E.Tree[]) => Tensor, args, path, {
      inputNames: ['x', 'wqkv', 'wo', 'w1', 'w2', 'g1', 'b1'],
      outputNames: ['y'],
    });
    const session = await ort.InferenceSession.create(readFileSync(path));
    assert.deepEqual(session.inputNames, ['x', 'wqkv', 'wo', 'w1', 'w2', 'g1', 'b1']);
    const feeds: Record<string, ort.Tensor> = {};
    session.inputNames.forEach((n, i) => {
      feeds[n] = new ort.Tensor('float32', args[i]!.data as Float32Array, [...args[i]!.shape]);
    });
    const out = (await session.run(feeds)).y!.data as Float32Array;
    const ref = E.toArray(E.jit(attentionBlock)(...(args as Parameters<typeof attentionBlock>)) as Tensor);
    assert.equal(out.length, ref.length);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(out[i]! - ref[i]!) < 1e-5);
  });
  it('noise inputs are reproducible under a seeded generator', () => {
    const f = E.jit((x: Tensor) => E.add(x, E.randomNormal(x.shape)), { rng: () => gen });
    let gen = new Rng(5);
    const a = E.toArray(f(E.zeros([8])) as Tensor);
    gen = new Rng(5);
    const b = E.toArray(f(E.zeros([8])) as Tensor);
    assert.deepEqual(a, b);
  });
  it('reports symbolic tensors escaping a trace, and bad shapes, by op name', () => {
    let leaked: Tensor | null = null;
    E.jit((x: Tensor) => (leaked = E.mul(x, 2)))(E.zeros([2]));
    assert.throws(() => E.add(leaked!, 1), /symbolic tensor .* outside of its trace/);
    assert.throws(() => E.matmul(E.zeros([2, 3]), E.zeros([4, 5])), /matmul.*inner dimensions differ/);
    assert.throws(() => E.reshape(E.zeros([2, 3]), [4, 2]), /cannot reshape \[2,3\] to \[4,2\]/);
  });
});
