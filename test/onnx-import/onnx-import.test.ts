import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { importOnnx } from '../../src/onnx-import/onnx-import.js';
import { VtokError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { tempDir } from '../io/fixtures.js';
import { ModelBuilder, floatTensor, int64Tensor } from './onnx-build.js';

/**
 * The differentiable ONNX importer: models written by vtok's own exporter and by hand (every mapped op, new and
 * old opsets) give onnxruntime's numbers; gradients through the imported network pass finite-difference checks
 * and equal those of the TypeScript function the file was exported from; bad files fail with named errors.
 */
const rng = new Rng(21);
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
const dir = tempDir('onnx-import');

async function ortRun(
  model: Uint8Array,
  feeds: Record<string, Tensor>,
): Promise<Record<string, { dims: readonly number[]; data: Float32Array }>> {
  const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
  const f: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', t.data as Float32Array, [...t.shape]);
  const out = await s.run(f);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { dims: v.dims, data: v.data as Float32Array }]));
}

function assertClose(
  name: string,
  got: Tensor,
  want: { dims: readonly number[]; data: ArrayLike<number> },
  tol = 1e-4,
): void {
  assert.deepEqual([...got.shape], [...want.dims], `${name}: shape`);
  const g = E.toArray(got);
  for (let i = 0; i < g.length; i++) {
    const w = Number(want.data[i]);
    if (!(Math.abs(g[i]! - w) <= tol * Math.max(1, Math.abs(w))))
      assert.fail(`${name}[${i}]: got ${g[i]}, onnxruntime ${w}`);
  }
}

/** Runs the imported net compiled (one traced graph) and compares every graph output with onnxruntime. */
async function checkAgainstOrt(bytes: Uint8Array, x: Tensor, expectOutputs: number): Promise<void> {
  const net = importOnnx(bytes);
  assert.equal(net.outputs.length, expectOutputs);
  const ours = E.jit((t: Tensor) => net.run([t]))(x) as Record<string, Tensor>;
  const ref = await ortRun(bytes, { [net.inputs[0]!.name]: x });
  for (const o of net.outputs) assertClose(o.name, ours[o.name]!, ref[o.name]!);
}

describe('ONNX import: vtok-exported networks', () => {
  const w1 = randn([8, 3, 3, 3], 0.3),
    b1 = randn([8], 0.1),
    w2 = randn([12, 8, 3, 3], 0.2),
    b2 = randn([12], 0.1);
  const reluNet = (x: Tensor) => {
    const h1 = E.relu(E.conv(x, w1, b1, { padding: 1 }));
    return [h1, E.relu(E.conv(h1, w2, b2, { stride: 2, padding: 1 }))];
  };
  const smoothNet = (x: Tensor) => {
    const h1 = E.tanh(E.conv(x, w1, b1, { padding: 1 }));
    return E.softplus(
      E.conv(h1, w2, b2, {
        stride: 2,
        padding: [
          [1, 0],
          [0, 1],
        ],
      }),
    );
  };
  const x = randn([2, 3, 12, 12]);
  const reluPath = join(dir, 'relu.onnx'),
    smoothPath = join(dir, 'smooth.onnx');
  E.exportOnnx((t) => reluNet(t as Tensor), [x], reluPath, { inputNames: ['image'], outputNames: ['f1', 'f2'] });
  E.exportOnnx((t) => smoothNet(t as Tensor), [x], smoothPath, { inputNames: ['image'], outputNames: ['f'] });

  it('reads inputs, outputs and frozen weights, and matches the original function and onnxruntime', async () => {
    const net = importOnnx(reluPath);
    assert.deepEqual(net.inputs, [{ name: 'image', dtype: 'float32', shape: [2, 3, 12, 12] }]);
    assert.deepEqual(
      net.outputs.map((o) => o.name),
      ['f1', 'f2'],
    );
    assert.equal(net.weightCount, 8 * 3 * 9 + 8 + 12 * 8 * 9 + 12);
    const ours = net.run([x]);
    const [h1, h2] = reluNet(x);
    assertClose('f1 vs function', ours.f1!, { dims: h1!.shape, data: h1!.data as Float32Array }, 1e-6);
    assertClose('f2 vs function', ours.f2!, { dims: h2!.shape, data: h2!.data as Float32Array }, 1e-6);
    const ref = await ortRun(readFileSync(reluPath), { image: x });
    assertClose('f2 vs onnxruntime', ours.f2!, ref.f2!);
    // by name, and an intermediate value on request
    const byName = net.run({ image: x }, ['f1']);
    assert.deepEqual(Object.keys(byName), ['f1']);
  });

  it('gradients through the imported network pass a finite-difference check', () => {
    const net = importOnnx(smoothPath);
    const r = E.gradcheck((t) => net.run([t]).f!, [x], { eps: 1e-2, directions: 4 });
    assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
  });

  it('gradients of the imported ReLU network equal those of the function it was exported from', () => {
    const net = importOnnx(reluPath);
    const wts = randn([2, 12, 6, 6]);
    const lossOf = (f: (t: Tensor) => Tensor) => (t: Tensor) => E.sum(E.mul(f(t), wts));
    const [la, ga] = E.valueAndGrad(lossOf((t) => net.run([t]).f2!))(x) as [Tensor, Tensor];
    const [lb, gb] = E.valueAndGrad(lossOf((t) => reluNet(t)[1]!))(x) as [Tensor, Tensor];
    assert.ok(Math.abs(E.item(la) - E.item(lb)) < 1e-4);
    assertClose('dL/dx', ga, { dims: gb.shape, data: gb.data as Float32Array }, 1e-5);
    assert.ok(E.toArray(ga).some((v) => v !== 0));
  });
});

/** A model with every mapped op at a recent opset; all float values are graph outputs. */
function everyOpModel(): { bytes: Uint8Array; outputs: number } {
  const b = new ModelBuilder(5);
  const o = (op: string, ins: string[], out: string | string[], attrs = {}) => b.op(op, ins, out, attrs, true);
  const t = (op: string, ins: string[], out: string, attrs = {}) => b.op(op, ins, out, attrs, false);
  const c1 = o('Conv', ['x', b.weight('W1', [6, 4, 3, 3]), b.weight('B1', [6], 0.1)], 'c1', { pads: [1, 1, 1, 1] });
  o('Conv', ['x', b.weight('W2', [6, 2, 3, 3]), ''], 'c2', {
    group: 2,
    strides: [2, 2],
    dilations: [2, 1],
    pads: [2, 1, 1, 0],
  });
  o('Conv', ['x', b.weight('W3', [3, 4, 2, 2]), b.weight('B3', [3])], 'c3', {
    auto_pad: 'SAME_UPPER',
    strides: [2, 2],
  });
  o('Conv', ['x', b.weight('W4', [3, 4, 3, 3])], 'c4', { auto_pad: 'VALID', kernel_shape: [3, 3] });
  const bn = o(
    'BatchNormalization',
    [
      c1,
      b.weight('bns', [6], 0.5, 1),
      b.weight('bnb', [6]),
      b.weight('bnm', [6]),
      b.floats('bnv', [6], [0.5, 1, 2, 0.1, 3, 1.5]),
    ],
    'bn',
    { epsilon: { f: 1e-3 } },
  );
  const r = o('Relu', [bn], 'relu');
  o('LeakyRelu', [bn], 'lrelu', { alpha: { f: 0.2 } });
  o('PRelu', [bn, b.weight('slope', [6, 1, 1])], 'prelu');
  o('Elu', [bn], 'elu', { alpha: { f: 0.7 } });
  const mp = o('MaxPool', [r], 'mp', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  const mp2 = o('MaxPool', [bn], 'mp_ceil', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
  o('MaxPool', [bn], 'mp_dil', { kernel_shape: [3, 3], dilations: [2, 2], pads: [2, 2, 2, 2] });
  o('MaxPool', [bn], 'mp_same', { kernel_shape: [3, 2], strides: [2, 1], auto_pad: 'SAME_UPPER' });
  o('AveragePool', [c1], 'ap', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  o('AveragePool', [c1], 'ap_incl', {
    kernel_shape: [3, 3],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    count_include_pad: 1,
  });
  o('AveragePool', [c1], 'ap_ceil', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
  o('AveragePool', [c1], 'ap_ceil_incl', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1, count_include_pad: 1 });
  const gap = o('GlobalAveragePool', [mp], 'gap');
  o('GlobalMaxPool', [c1], 'gmp');
  const fl = o('Flatten', [gap], 'flat');
  o('Flatten', [c1], 'flat2', { axis: 2 });
  const gm = o('Gemm', [fl, b.weight('Wg', [5, 6]), b.weight('Bg', [5])], 'gemm', {
    transB: 1,
    alpha: { f: 0.5 },
    beta: { f: 2 },
  });
  const flT = t('Transpose', [fl], 'flT');
  o('Gemm', [flT, b.weight('Wh', [6, 4]), b.weight('Ch', [1, 4])], 'gemm_ta', { transA: 1 });
  o('MatMul', [fl, b.weight('Wm', [6, 3])], 'mm');
  o('MatMul', [c1, b.weight('Wm2', [9, 4])], 'mm4d');
  o('MatMul', [fl, b.weight('v6', [6])], 'mmvec');
  o('Softmax', [gm], 'softmax');
  o('Softmax', [c1], 'softmax_ax1', { axis: 1 });
  o('LogSoftmax', [c1], 'logsoftmax', { axis: 1 });
  const sig = o('Sigmoid', [c1], 'sigmoid');
  const th = o('Tanh', [c1], 'tanh');
  o('Softplus', [c1], 'softplus');
  o('HardSigmoid', [c1], 'hardsigmoid', { alpha: { f: 0.3 }, beta: { f: 0.4 } });
  o('HardSwish', [c1], 'hardswish');
  o('Gelu', [c1], 'gelu');
  o('Gelu', [c1], 'gelu_tanh', { approximate: 'tanh' });
  o('Erf', [c1], 'erf');
  o('Exp', [th], 'exp');
  o('Log', [sig], 'log');
  o('Neg', [c1], 'neg');
  const ab = o('Abs', [c1], 'abs');
  const sig1 = t('Add', [sig, b.floats('one', [], [1])], 'sig1');
  o('Reciprocal', [sig1], 'recip');
  const ad = o('Add', [sig, th], 'add');
  const sb = o('Sub', [ad, b.weight('B1b', [6, 1, 1])], 'sub');
  b.op('Constant', [], 'k3', { value: { t: floatTensor('', [], [3]) } });
  b.op('Constant', [], 'kf', { value_float: { f: 0.25 } });
  const mu = o('Mul', [sb, 'k3'], 'mul');
  o('Div', [mu, t('Add', [ab, 'kf'], 'abk')], 'div');
  o('Sum', [sig, th, ab], 'sum3');
  o('Mean', [sig, th], 'mean2');
  o('Max', [sig, th, c1], 'max3');
  o('Min', [sig, th], 'min2');
  o('Reshape', [mp, b.ints('shp1', [2, -1])], 'reshape');
  o('Reshape', [mp, b.ints('shp0', [0, 0, -1])], 'reshape0');
  o('Transpose', [mp], 'transpose', { perm: [0, 2, 3, 1] });
  o('Transpose', [gm], 'transpose_default');
  o('Concat', [mp, mp2], 'concat', { axis: 1 });
  o('Concat', [mp, mp2], 'concat_neg', { axis: -1 });
  o('Split', [c1], ['split_a', 'split_b', 'split_c'], { axis: 1, num_outputs: 3 });
  o('Split', [c1, b.ints('sizes', [1, 5])], ['split_d', 'split_e'], { axis: 1 });
  o('Clip', [c1, b.floats('lo', [], [-0.5]), b.floats('hi', [], [0.5])], 'clip');
  o('Clip', [c1, '', b.floats('hi2', [], [0.3])], 'clip_hi');
  const idn = t('Identity', [c1], 'ident');
  o('Dropout', [idn], 'dropout');
  const rm = o('ReduceMean', [c1, b.ints('ax23', [2, 3])], 'rmean');
  o('ReduceMean', [c1], 'rmean_all', { keepdims: 0 });
  o('ReduceSum', [c1, b.ints('ax1', [1])], 'rsum', { keepdims: 0 });
  o('ReduceMax', [c1, b.ints('axm1', [-1])], 'rmax');
  o('ReduceMin', [c1, 'ax1'], 'rmin');
  o('ReduceL2', [c1, 'ax1'], 'rl2');
  o('ReduceL1', [c1, 'ax1'], 'rl1');
  o('ReduceSumSquare', [c1, 'ax23'], 'rss', { keepdims: 0 });
  o('Sqrt', [t('Add', [t('Mul', [c1, c1], 'sq_in'), 'one'], 'sq_in1')], 'sqrt');
  o('Pow', [sig, b.floats('two', [], [2])], 'pow2');
  o('Pow', [sig, b.floats('three', [], [3])], 'pow3');
  o('Pow', [sig, b.floats('half', [], [0.5])], 'powhalf');
  o('Pow', [sig1, th], 'pow_t');
  o('Pad', ['x', b.ints('pads1', [0, 0, 1, 2, 0, 0, 2, 1]), b.floats('pv', [], [0.5])], 'pad');
  o('Pad', ['x', b.ints('pads2', [0, 0, 2, 1, 0, 0, 1, 2])], 'pad_reflect', { mode: 'reflect' });
  o('Pad', ['x', 'pads2'], 'pad_edge', { mode: 'edge' });
  o('Pad', ['x', b.ints('pads3', [0, 0, -1, 1, 0, 0, 2, -2])], 'pad_neg');
  o('Pad', ['x', b.ints('pads4', [1, 2, 3, 4]), '', b.ints('padax', [2, 3])], 'pad_axes');
  o('Slice', [c1, b.ints('st', [1, 0]), b.ints('en', [3, -1]), b.ints('sax', [2, 3]), b.ints('sst', [1, 2])], 'slice');
  o(
    'Slice',
    [c1, b.ints('st2', [-1]), b.ints('en2', [-10000]), b.ints('sax2', [3]), b.ints('sst2', [-2])],
    'slice_rev',
  );
  o(
    'Slice',
    [c1, b.ints('st3', [0]), b.ints('en3', [9007199254740991]), b.ints('sax3', [1]), b.ints('sst3', [3])],
    'slice_big',
  );
  const sqz = o('Squeeze', [rm, 'ax23'], 'squeeze');
  o('Unsqueeze', [sqz, b.ints('uax', [0, -1])], 'unsqueeze');
  o('Squeeze', [gap], 'squeeze_all');
  // the shape arithmetic exporters write: Shape → Gather → Unsqueeze → Concat → Reshape
  const shp = t('Shape', [mp], 'shp');
  const g0 = t('Gather', [shp, b.ints('zero', [0], [])], 'g0');
  const u0 = t('Unsqueeze', [g0, b.ints('ax0', [0])], 'u0');
  const tail = t('Shape', [mp], 'shp_tail', { start: 2 });
  const prod = t(
    'ReduceSum',
    [
      t(
        'Mul',
        [t('Gather', [tail, b.ints('i0', [0], [])], 'h'), t('Gather', [tail, b.ints('i1', [1], [])], 'w')],
        'hw',
      ),
      '',
    ],
    'hw1',
    { keepdims: 1 },
  );
  const cat = t('Concat', [u0, b.ints('m1', [-1]), t('Unsqueeze', [prod, 'ax0'], 'hw2')], 'cat', { axis: 0 });
  o('Reshape', [mp, cat], 'reshape_dyn');
  o('Gather', [c1, b.ints('gi', [2, 0])], 'gather', { axis: 1 });
  o('Gather', [c1, b.ints('gin', [-1], [1, 1])], 'gather_neg', { axis: 3 });
  o('Expand', [gap, b.ints('exs', [2, 6, 3, 4])], 'expand');
  o('Expand', [b.weight('ev', [3, 1]), b.ints('exs2', [2, 1, 4])], 'expand_rank');
  o('Cast', [c1], 'cast', { to: 1 });
  const cos = t('ConstantOfShape', [b.ints('cs', [6, 1, 1])], 'cos', { value: { t: floatTensor('', [1], [1.5]) } });
  o('Mul', [c1, cos], 'mul_cos');
  o('ConvTranspose', [c1, b.weight('Wt', [6, 3, 3, 3]), b.weight('Bt', [3])], 'convt', {
    strides: [2, 2],
    pads: [1, 1, 1, 1],
    output_padding: [1, 1],
  });
  o('ConvTranspose', [c1, b.weight('Wt2', [6, 2, 2, 2])], 'convt_g', { group: 2 });
  return { bytes: b.build([['x', [2, 4, 9, 9]]], 20), outputs: b.outputs.length };
}

/**
 * Attribute-form ops of older opsets (Slice, Pad, Clip, Squeeze, Unsqueeze, ReduceMean/Sum and Split attributes; 2-D
 * Softmax).
 */
function legacyModel(): { bytes: Uint8Array; outputs: number } {
  const b = new ModelBuilder(6);
  const o = (op: string, ins: string[], out: string | string[], attrs = {}) => b.op(op, ins, out, attrs, true);
  const c = o('Conv', ['x', b.weight('W', [4, 3, 3, 3]), b.weight('B', [4], 0.1)], 'c', { pads: [1, 1, 1, 1] });
  o('Slice', [c], 'slice', { starts: [1, -4], ends: [5, 100], axes: [2, 3] });
  o('Pad', [c], 'pad', { pads: [0, 0, 1, 2, 0, 0, 2, 1], value: { f: 0.25 } });
  o('Clip', [c], 'clip', { min: { f: -0.3 }, max: { f: 0.4 } });
  const rm = o('ReduceMean', [c], 'rmean', { axes: [2, 3], keepdims: 0 });
  o('ReduceSum', [c], 'rsum', { axes: [1] });
  const u = o('Unsqueeze', [rm], 'unsq', { axes: [1, 3] });
  o('Squeeze', [u], 'sq', { axes: [3] });
  o('Softmax', [c], 'softmax', { axis: 1 });
  o('LogSoftmax', [c], 'logsoftmax');
  o('Split', [c], ['sp1', 'sp2'], { axis: 1, split: [1, 3] });
  o(
    'BatchNormalization',
    [c, b.weight('s', [4], 0.3, 1), b.weight('bb', [4]), b.weight('m', [4]), b.floats('v', [4], [1, 2, 0.5, 0.25])],
    'bn',
    { epsilon: { f: 1e-5 } },
  );
  o('MaxPool', [c], 'mp', { kernel_shape: [2, 2], strides: [2, 2] });
  o('Dropout', [c], 'drop', { ratio: { f: 0.5 } });
  o(
    'Unsqueeze',
    [o('Gemm', [o('Flatten', [c], 'fl'), b.weight('G', [4 * 36, 5]), b.weight('GC', [5])], 'gemm')],
    'gu',
    { axes: [0] },
  );
  return { bytes: b.build([['x', [2, 3, 6, 6]]], 9), outputs: b.outputs.length };
}

describe('ONNX import: hand-written models against onnxruntime', () => {
  it('every mapped op (opset 20)', async () => {
    const { bytes, outputs } = everyOpModel();
    await checkAgainstOrt(bytes, randn([2, 4, 9, 9]), outputs);
  });
  it('attribute forms of opset 9', async () => {
    const { bytes, outputs } = legacyModel();
    await checkAgainstOrt(bytes, randn([2, 3, 6, 6]), outputs);
  });
  it(
    'every op of the registry-less compositions has a gradient: ' +
      'MaxPool, AveragePool, BatchNorm, Pad, Slice, Gemm, Softmax',
    () => {
      const b = new ModelBuilder(9);
      const mp = b.op('MaxPool', ['x'], 'mp', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const mpc = b.op('MaxPool', ['x'], 'mpc', { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
      const c = b.op(
        'Conv',
        [b.op('Concat', [mp, mpc], 'cat', { axis: 1 }), b.weight('W', [4, 4, 3, 3], 0.3), b.weight('B', [4], 0.1)],
        'c',
        { pads: [1, 1, 1, 1] },
      );
      const bn = b.op(
        'BatchNormalization',
        [c, b.weight('s', [4], 0.3, 1), b.weight('bb', [4]), b.weight('m', [4]), b.floats('v', [4], [1, 2, 0.5, 0.25])],
        'bn',
      );
      const ap = b.op('AveragePool', [b.op('Tanh', [bn], 'th')], 'ap', {
        kernel_shape: [2, 2],
        strides: [1, 1],
        pads: [1, 0, 0, 1],
      });
      const pr = b.op('Pad', [ap, b.ints('p', [0, 0, 1, 1, 0, 0, 1, 1])], 'pr', { mode: 'reflect' });
      const sl = b.op(
        'Slice',
        [pr, b.ints('st', [0, 1]), b.ints('en', [100, 100]), b.ints('ax', [2, 3]), b.ints('sp', [2, 1])],
        'sl',
      );
      const g = b.op('Gemm', [b.op('Flatten', [sl], 'fl'), b.weight('G', [4 * 3 * 4, 6], 0.2)], 'g');
      b.op('Softmax', [g], 'out', {}, true);
      const net = importOnnx(b.build([['x', [2, 2, 5, 5]]], 17));
      // distinct, well-separated inputs: no ties or switches of the max within the finite-difference steps
      const n = 2 * 2 * 5 * 5,
        perm = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rng.uniform(1)[0]! * (i + 1));
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      const x = E.tensor(
        perm.map((p) => (p - n / 2) * 0.05),
        [2, 2, 5, 5],
      );
      const r = E.gradcheck((t) => net.run([t]).out!, [x], { eps: 2e-3, directions: 4 });
      assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
    },
  );
});

describe('ONNX import: bad input', () => {
  const good = everyOpModel().bytes;
  const rejects = (bytes: Uint8Array | string, pattern: RegExp) =>
    assert.throws(
      () => importOnnx(bytes),
      (e: Error) => e instanceof VtokError && pattern.test(e.message),
    );

  it('names the node and op type of an unsupported op', () => {
    const b = new ModelBuilder();
    b.op('Relu', ['x'], 'r');
    b.nodes.push({
      opType: 'Resize',
      input: ['r', '', b.floats('scales', [4], [1, 1, 2, 2])],
      output: ['up'],
      name: 'upsample_1',
    });
    b.outputs.push('up');
    rejects(b.build([['x', [1, 1, 4, 4]]], 17), /node "upsample_1" \(Resize\): op type Resize is not supported/);
  });
  it('rejects an unsupported attribute, a non-standard domain and an opset out of range', () => {
    const a = new ModelBuilder();
    a.op('MaxPool', ['x'], 'mp', { kernel_shape: [2, 2], strides: [2, 2], fancy: 1 }, true);
    const net = importOnnx(a.build([['x', [1, 1, 4, 4]]], 17));
    assert.throws(
      () => net.run([randn([1, 1, 4, 4])]),
      /node "MaxPool_mp" \(MaxPool\): attribute "fancy" is not supported/,
    );
    const d = new ModelBuilder();
    d.op('Relu', ['x'], 'r', {}, true);
    d.nodes[0]!.domain = 'com.microsoft';
    rejects(d.build([['x', [1, 1, 4, 4]]], 17), /\(Relu\): domain "com\.microsoft"/);
    for (const opset of [6, 30]) {
      const m = new ModelBuilder();
      m.op('Relu', ['x'], 'r', {}, true);
      rejects(m.build([['x', [2]]], opset), new RegExp(`opset ${opset} is not supported`));
    }
  });
  it('rejects truncated, empty, missing and non-ONNX files with the file named', () => {
    const path = join(dir, 'truncated.onnx');
    writeFileSync(path, good.subarray(0, Math.floor(good.length / 2)));
    rejects(path, /truncated\.onnx: not a valid ONNX model/);
    writeFileSync(join(dir, 'empty.onnx'), new Uint8Array());
    rejects(join(dir, 'empty.onnx'), /empty\.onnx: the ONNX model file is empty/);
    rejects(join(dir, 'missing.onnx'), /missing\.onnx: cannot read the ONNX model \(ENOENT\)/);
    writeFileSync(join(dir, 'text.onnx'), 'this is not a protobuf at all, just some text\n');
    rejects(join(dir, 'text.onnx'), /text\.onnx: not a valid ONNX model/);
  });
  it('rejects initializers whose data does not fit their shape, and inputs of the wrong shape', () => {
    const b = new ModelBuilder();
    b.op('Add', ['x', 'w'], 'y', {}, true);
    b.inits.push({ ...floatTensor('w', [4], [1, 2, 3, 4]), dims: [5] });
    rejects(b.build([['x', [4]]], 17), /initializer "w" holds 4 values for shape \[5\]/);
    const c = new ModelBuilder();
    c.op('Add', ['x', c.floats('w', [4], [1, 2, 3, 4])], 'y', {}, true);
    c.inits.push(int64Tensor('unused', [2], [1, 2]));
    const net = importOnnx(c.build([['x', [4]]], 17));
    assert.deepEqual(E.toArray(net.run([E.tensor([1, 1, 1, 1])]).y!), [2, 3, 4, 5]);
    assert.throws(() => net.run([E.tensor([1, 1, 1])]), /input "x" must be float32\[4\], got float32\[3\]/);
    assert.throws(() => net.run({ y: E.tensor([1, 1, 1, 1]) }), /has no input "y"/);
  });
  it('names the node when a value that must be constant is computed from the input', () => {
    const b = new ModelBuilder();
    b.op('Reshape', ['x', b.op('Cast', ['x'], 'shape_from_x', { to: 7 })], 'y', {}, true);
    const net = importOnnx(b.build([['x', [2]]], 17));
    // eagerly every value is known; traced, the shape would depend on the input
    assert.deepEqual([...net.run([E.tensor([1, 2])]).y!.shape], [1, 2]);
    assert.throws(
      () => E.jit((t: Tensor) => net.run([t]))(E.tensor([1, 2])),
      /node "Reshape_y" \(Reshape\): input 1 \("shape_from_x"\) must be a constant/,
    );
  });
});
