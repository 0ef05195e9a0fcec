import * as E from '../src/engine/index.js';
import type { Int8Weights, Tensor } from '../src/engine/index.js';
import { relativeRmsError } from '../src/metrics/psnr.js';
import { Rng } from '../src/util/rng.js';
import { round1, timeMs } from './timing.js';

/**
 * The int8 weight formats side by side on three small programs: a 3-D conv net (QDQ → QLinearConv), an MLP
 * (static int8 MatMul → MatMulIntegerToFloat), and a matmul built to overflow 16-bit pair sums. For each format:
 * relative RMS error against fp32 and the median forward time. Prints one JSON line per (program, format), then the
 * backend's own choice for this CPU. `node dist/bench/run.js int8 [threads] [--formats int8,uint8,int7] [--runs N]`.
 * Also the quick check run under `qemu-x86_64 -cpu Haswell` (an AVX2 CPU without VNNI), where full-range int8 weights
 * saturate.
 */
export function main(args: string[]): void {
  const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 1);
  const fi = args.indexOf('--formats');
  const formats = (fi >= 0 ? args[fi + 1]!.split(',') : ['int8', 'uint8', 'int7']) as Int8Weights[];
  const ri = args.indexOf('--runs');
  const runs = ri >= 0 ? Number(args[ri + 1]) : 5;
  E.setRuntimeDefaults({ threads });
  const rng = new Rng(7);
  const rand = (shape: number[], scale: number) =>
    E.concrete(
      rng.normal(shape.reduce((a, b) => a * b, 1)).map((v) => v * scale),
      shape,
      'float32',
    );

  const w1 = rand([32, 16, 3, 3, 3], 0.05),
    b1 = rand([32], 0.1),
    w2 = rand([32, 32, 3, 3, 3], 0.04);
  const conv = (x: Tensor) => E.conv(E.silu(E.conv(x, w1, b1, { padding: 1 })), w2, null, { padding: 1 });
  const convIn = E.concrete(
    new Rng(3).uniform(16 * 4 * 16 * 16).map((v) => 2 * v - 1),
    [1, 16, 4, 16, 16],
    'float32',
  );
  const wa = rand([256, 512], 0.06),
    wb = rand([256, 512], 0.04);
  const mlp = (x: Tensor) => E.linear(E.gelu(E.matmul(x, wa)), wb);
  const mlpIn = E.concrete(new Rng(5).normal(64 * 256), [64, 256], 'float32');
  // Worst case for 16-bit pair sums: non-negative inputs near the top of the uint8 grid times weights of one sign
  // near the top of theirs (u8·s8 pairs up to 2·255·127 = 64770 > 32767).
  const wp = E.concrete(
    new Rng(11).uniform(256 * 128).map((v) => 0.5 + 0.5 * v),
    [256, 128],
    'float32',
  );
  const probe = (x: Tensor) => E.matmul(x, wp);
  const probeIn = E.concrete(
    new Rng(13).uniform(64 * 256).map((v) => 0.5 + 0.5 * v),
    [64, 256],
    'float32',
  );

  for (const [name, fn, x, quantize] of [
    ['conv3d', conv, convIn, {}],
    ['mlp_static', mlp, mlpIn, { matmul: 'static' }],
    ['pair_sum_probe', probe, probeIn, { matmul: 'static' }],
  ] as const) {
    const f32 = E.jit(fn, { name: `${name}_fp32` });
    const ref = f32(x) as Tensor;
    const fp32Ms = timeMs(() => f32(x), 1, runs, `${name} fp32`);
    for (const weights of formats) {
      const f = E.jit(fn, { name: `${name}_${weights}`, precision: 'int8', quantize: { ...quantize, weights } });
      const out = f(x) as Tensor;
      const ms = timeMs(() => f(x), 1, runs, `${name} ${weights}`);
      console.log(
        JSON.stringify({
          program: name,
          weights,
          rel_rms_err: Math.round(relativeRmsError(ref.data as Float32Array, out.data as Float32Array) * 1e4) / 1e4,
          int8_ms: round1(ms),
          fp32_ms: round1(fp32Ms),
          threads,
        }),
      );
    }
  }
  const k = E.backend().int8Kernels();
  console.log(JSON.stringify({ backend: E.backend().name, int8_weights: k.weights, int8_kernels: k.reason, threads }));
}
