import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import * as E from '../../src/engine/index.js';
import type { HostTensor, Tensor } from '../../src/engine/index.js';
import { int8KernelsFor } from '../../src/engine/backends/node.js';
import {
  calibrate,
  optimizedOpCounts,
  quantizeModel,
  quantizeStatic,
  QuantizeError,
} from '../../src/engine/quantize.js';
import { VtokError } from '../../src/util/errors.js';
import { relativeRmsError } from '../../src/metrics/psnr.js';
import { Rng } from '../../src/util/rng.js';

/** Post-training int8 quantization: QDQ rewrite, ORT fusion, accuracy against fp32, and bad calibration input. */

const rng = new Rng(7);
const rand = (shape: number[], scale: number) =>
  E.concrete(
    rng.normal(shape.reduce((a, b) => a * b, 1)).map((v) => v * scale),
    shape,
    'float32',
  );

// A small 3-D conv net with baked weights: conv+bias → silu → strided conv → GroupNorm → 1×1 conv+bias, and a
// depth-to-space (reshape/transpose) between the last two so that data movement follows a quantized output.
const w1 = rand([32, 16, 3, 3, 3], 0.05),
  b1 = rand([32], 0.1);
const w2 = rand([64, 32, 3, 3, 3], 0.04);
const w3 = rand([8, 16, 1, 1, 1], 0.3),
  b3 = rand([8], 0.1);
function net(x: Tensor): Tensor {
  let h = E.silu(E.conv(x, w1, b1, { padding: 1 }));
  h = E.conv(h, w2, null, { padding: 1, stride: [1, 2, 2] });
  const [n, c, t, hh, ww] = h.shape as [number, number, number, number, number];
  // [n, c, t, h, w] → [n, c/4, t, 2h, 2w]
  h = E.reshape(E.transpose(E.reshape(h, [n, 2, 2, c / 4, t, hh, ww]), [0, 3, 4, 5, 1, 6, 2]), [
    n,
    c / 4,
    t,
    hh * 2,
    ww * 2,
  ]);
  h = E.groupNorm(h, 4, null, null, 1e-5);
  return E.conv(h, w3, b3);
}
const input = (seed: number) =>
  E.concrete(
    new Rng(seed).uniform(2 * 16 * 4 * 12 * 12).map((v) => 2 * v - 1),
    [2, 16, 4, 12, 12],
    'float32',
  );
const feeds = (x: Tensor): HostTensor[] => [{ dtype: 'float32', shape: [...x.shape], data: x.data }];

/** Relative RMS error of two float tensors. */
const relErr = (a: Tensor, b: Tensor): number => relativeRmsError(a.data as Float32Array, b.data as Float32Array);

/**
 * The weight formats every machine is tested with: this CPU's own choice, and the two that are safe on x86 CPUs
 * without VNNI (int7, their default: no saturating pair sum; uint8: u8×u8 kernels), so that the path an AVX2-only
 * CPU takes is checked here too. Full-range int8 is only tested where the CPU picks it (it is inexact without VNNI).
 */
const FORMATS = [...new Set([E.backend().int8Kernels().weights, 'uint8', 'int7'] as const)];
/** int7 has one bit less of weight precision. */
const TOLERANCE = { int8: 0.03, uint8: 0.03, int7: 0.04 };

/** The quantized weight initializers of a model (by the suffix quantizeModel gives them). */
function weightInits(model: Uint8Array, format: string) {
  return onnxProto.onnx.ModelProto.decode(model).graph!.initializer!.filter((t) => t.name!.includes(`_${format}__q`));
}

describe('int8 quantization', () => {
  for (const weights of FORMATS) {
    it(`QDQ convolutions are fused into QLinearConv and stay close to fp32 (${weights} weights)`, () => {
      const fp32 = E.jit(net, { threads: 2 });
      const int8 = E.jit(net, {
        threads: 2,
        precision: 'int8',
        calibrate: () => [[input(1)], [input(2)]],
        quantize: { weights },
      });
      const x = input(3);
      const c = int8.compile(x);
      assert.equal(c.quantization?.conv, 3, 'all three convolutions are quantized');
      assert.equal(c.quantization?.weights, weights);
      const counts = optimizedOpCounts(c.model, { threads: 2 });
      assert.equal(counts.QLinearConv, 3, `ORT fused the QDQ groups: ${JSON.stringify(counts)}`);
      assert.equal(counts.Conv ?? 0, 0, 'no float convolution is left');
      const inits = weightInits(c.model, weights);
      assert.equal(inits.length, 3);
      const DT = onnxProto.onnx.TensorProto.DataType;
      for (const t of inits) {
        assert.equal(t.dataType, weights === 'uint8' ? DT.UINT8 : DT.INT8, t.name!);
        const q =
          weights === 'uint8'
            ? Array.from(t.rawData!, (v) => v - 128)
            : Array.from(new Int8Array(t.rawData!.buffer, t.rawData!.byteOffset, t.rawData!.length));
        const amax = Math.max(...q.map(Math.abs));
        // each channel's largest weight lands on the top of the grid; none beyond it
        assert.equal(amax, weights === 'int7' ? 64 : 127, t.name!);
      }
      const err = relErr(fp32(x) as Tensor, int8(x) as Tensor);
      console.log(`# QDQ conv net, ${weights} weights: relative RMS error ${err.toFixed(4)}`);
      assert.ok(err > 0 && err < TOLERANCE[weights], `relative RMS error ${err}`);
    });
  }

  it('a matmul built to overflow 16-bit pair sums stays exact in every format this machine tests', () => {
    // Non-negative inputs near the top of the uint8 grid times same-sign weights near the top of the int8 grid:
    // pairs of u8·s8 products reach 2·255·127 = 64770, which VPMADDUBSW (x86 without VNNI) clamps to 32767. Under
    // an emulated AVX2 CPU (qemu -cpu Haswell) full-range int8 weights give a relative error of 0.14 here.
    const w = E.concrete(
      new Rng(11).uniform(96 * 48).map((v) => 0.5 + 0.5 * v),
      [96, 48],
      'float32',
    );
    const x = E.concrete(
      new Rng(13).uniform(32 * 96).map((v) => 0.5 + 0.5 * v),
      [32, 96],
      'float32',
    );
    const f = (a: Tensor) => E.matmul(a, w);
    const ref = E.jit(f, { threads: 2 })(x) as Tensor;
    for (const weights of FORMATS) {
      const err = relErr(
        ref,
        E.jit(f, { threads: 2, precision: 'int8', quantize: { matmul: 'static', weights } })(x) as Tensor,
      );
      assert.ok(err < 0.002, `${weights} weights: relative RMS error ${err}`);
    }
  });

  it(
    'the weight format follows the CPU: full range with VNNI/AMX or ' +
      'off x86, 7-bit on other x86 CPUs, VTOK_INT8_KERNEL forces one',
    () => {
      const flags = (s: string) => new Set(s.split(' '));
      assert.equal(int8KernelsFor(undefined, 'x64', flags('sse4_2 avx2 avx512f avx512bw avx512_vnni')).weights, 'int8');
      assert.equal(int8KernelsFor(undefined, 'x64', flags('sse4_2 avx2 avx_vnni')).weights, 'int8');
      assert.equal(int8KernelsFor(undefined, 'x64', flags('avx2 avx512f amx_int8')).weights, 'int8');
      // AVX2-only (e.g. AMD Zen 2/3) and AVX-512 without VNNI (e.g. Skylake-SP) saturate u8×s8 pair sums
      assert.match(int8KernelsFor(undefined, 'x64', flags('sse4_2 avx2 fma')).reason, /no VNNI/);
      assert.equal(int8KernelsFor(undefined, 'x64', flags('sse4_2 avx2 fma')).weights, 'int7');
      assert.equal(int8KernelsFor(undefined, 'x64', flags('avx2 avx512f avx512bw')).weights, 'int7');
      assert.equal(int8KernelsFor(undefined, 'x64', null).weights, 'int7');
      assert.equal(int8KernelsFor('auto', 'arm64', null).weights, 'int8');
      assert.deepEqual(int8KernelsFor('uint8', 'x64', flags('avx512_vnni')), {
        weights: 'uint8',
        reason: 'forced by VTOK_INT8_KERNEL=uint8',
      });
      assert.throws(
        () => int8KernelsFor('int4', 'x64', null),
        (e: Error) =>
          e instanceof VtokError &&
          /VTOK_INT8_KERNEL="int4": expected one of int8, uint8, int7 or auto/.test(e.message),
      );
      // the default follows the backend (which reads the environment at each quantization)
      const model = E.jit(net, { threads: 2 }).compile(input(1)).model;
      const before = process.env.VTOK_INT8_KERNEL;
      try {
        process.env.VTOK_INT8_KERNEL = 'uint8';
        assert.equal(quantizeStatic(model, [feeds(input(1))], { runtime: { threads: 2 } }).report.weights, 'uint8');
        assert.equal(
          quantizeStatic(model, [feeds(input(1))], { weights: 'int7', runtime: { threads: 2 } }).report.weights,
          'int7',
        );
      } finally {
        if (before === undefined) delete process.env.VTOK_INT8_KERNEL;
        else process.env.VTOK_INT8_KERNEL = before;
      }
      assert.throws(
        () => quantizeStatic(model, [feeds(input(1))], { weights: 'int4' as never }),
        /unknown weight format "int4"/,
      );
    },
  );

  it('keepFloat and minInputChannels leave convolutions in float32', () => {
    const model = E.jit(net, { threads: 2 }).compile(input(1)).model;
    const kept = quantizeStatic(model, [feeds(input(1))], {
      keepFloat: (c) => c.index === c.count - 1,
      runtime: { threads: 2 },
    });
    assert.equal(kept.report.conv, 2);
    assert.equal(kept.report.keptFloat, 1);
    const counts = optimizedOpCounts(kept.model, { threads: 2 });
    assert.equal(counts.QLinearConv, 2);
    assert.equal(counts.Conv, 1);
    // the first and last convolutions read 16 channels, below a threshold of 17; the middle one reads 32
    assert.equal(quantizeStatic(model, [feeds(input(1))], { minInputChannels: 17 }).report.conv, 1);
  });

  it('moving data in uint8 (dequantizing after the reshape/transpose) is exact', () => {
    const model = E.jit(net, { threads: 2 }).compile(input(1)).model;
    const ranges = calibrate(model, quantizeTensors(model), [feeds(input(1))], { runtime: { threads: 2 } });
    const run = (m: Uint8Array) =>
      new E.Session(m, ['in0'], ['out0'], { threads: 2 }).run(feeds(input(4)))[0]!.data as Float32Array;
    const sunk = quantizeModel(model, ranges),
      plain = quantizeModel(model, ranges, { sinkDequantize: false });
    // what the reshape before the transpose reads: the uint8 tensor once sunk, the dequantized one otherwise
    const source = (m: Uint8Array) => {
      const nodes = onnxProto.onnx.ModelProto.decode(m).graph!.node!;
      const producer = (name: string) => nodes.find((n) => n.output!.includes(name))!;
      return producer(producer(nodes.find((n) => n.opType === 'Transpose')!.input![0]!).input![0]!).opType;
    };
    assert.equal(source(sunk.model), 'QuantizeLinear');
    assert.equal(source(plain.model), 'DequantizeLinear');
    assert.deepEqual(run(sunk.model), run(plain.model));
  });

  it('int8 MatMul with a constant weight: static (MatMulIntegerToFloat) and dynamic (DynamicQuantizeMatMul)', () => {
    const wa = rand([64, 96], 0.1),
      wb = rand([48, 96], 0.1),
      bias = rand([48], 0.1);
    // linear() lowers its weight through a Transpose: folded when quantizing
    const mlp = (x: Tensor) => E.linear(E.gelu(E.matmul(x, wa)), wb, bias);
    const x = E.concrete(new Rng(5).normal(3 * 40 * 64), [3, 40, 64], 'float32');
    const ref = E.jit(mlp, { threads: 2 })(x) as Tensor;
    for (const weights of FORMATS) {
      for (const [mode, kernel] of [
        ['static', 'MatMulIntegerToFloat'],
        ['dynamic', 'DynamicQuantizeMatMul'],
      ] as const) {
        const f = E.jit(mlp, { threads: 2, precision: 'int8', quantize: { matmul: mode, weights } });
        const c = f.compile(x);
        assert.equal(c.quantization?.matmul, 2, mode);
        assert.equal(weightInits(c.model, weights).length, 2);
        const counts = optimizedOpCounts(c.model, { threads: 2 });
        assert.equal(counts[kernel], 2, `${mode}: ${JSON.stringify(counts)}`);
        assert.equal(counts.MatMul ?? 0, 0);
        const err = relErr(ref, f(x) as Tensor);
        console.log(`# MLP, ${mode} int8 MatMul, ${weights} weights: relative RMS error ${err.toFixed(4)}`);
        assert.ok(err > 0 && err < TOLERANCE[weights], `${mode}, ${weights} weights: relative RMS error ${err}`);
      }
    }
  });

  it('bad calibration input gives a clear error', () => {
    const model = E.jit(net, { threads: 2 }).compile(input(1)).model;
    assert.throws(
      () => quantizeStatic(model, []),
      (e: Error) => e instanceof QuantizeError && /no calibration inputs/.test(e.message),
    );
    assert.throws(() => quantizeStatic(model, [[]]), /calibration set 0 has 0 inputs, the model takes 1/);
    const wrong = E.zeros([2, 16, 4, 12, 10]);
    assert.throws(
      () => quantizeStatic(model, [feeds(input(1)), feeds(wrong)]),
      /calibration set 1, input 0 \(in0\) has shape \[2,16,4,12,10\], the model takes \[2,16,4,12,12\]/,
    );
    const nan = input(1);
    (nan.data as Float32Array)[17] = NaN;
    assert.throws(() => quantizeStatic(model, [feeds(nan)]), /input 0 \(in0\) holds a non-finite value \(NaN\) at 17/);
    assert.throws(
      () =>
        quantizeStatic(model, [
          [{ dtype: 'int64', shape: [2, 16, 4, 12, 12], data: new BigInt64Array(2 * 16 * 4 * 144) }],
        ]),
      /is int64, the model takes/,
    );
    assert.throws(
      () => quantizeStatic(model, [feeds(input(1))], { percentile: 40 }),
      /percentile must be in \(50, 100\]/,
    );
    // through jit: calibration arguments of another shape than the program's
    const f = E.jit(net, { precision: 'int8', calibrate: () => [[wrong]] });
    assert.throws(() => f(input(1)), /calibration set 0 has signature .*, the program is compiled for/);
    assert.throws(
      () => E.jit(net, { precision: 'int8', calibrate: () => [] })(input(1)),
      /calibrate returned no argument lists/,
    );
    assert.throws(() => E.jit(net, { precision: 'int4' as never })(input(1)), /unknown precision "int4"/);
  });
});

/** The tensors static quantization calibrates (re-exported for the test through the public module). */
function quantizeTensors(model: Uint8Array): string[] {
  return E.calibrationTensors(model);
}
