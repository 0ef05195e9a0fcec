import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { Conv3d, GroupNorm, Module } from '../src/nn/index.js';
import { AdamW, constantLr, TrainStep } from '../src/nn/train.js';
import { round1, timeMs } from './timing.js';

/**
 * The "bench encoder" of ../../shared/bench/README.md: a causal 3D conv encoder (MAGVIT-v2 kind), float32,
 * batch 1, input 1×3×17×64×64, 11,073,938 parameters. Measures the eval forward (weights baked into the ONNX
 * model as initializers) and one compiled training step (forward + backward + AdamW) with 2 intra-op threads,
 * and prints {"forward_ms", "train_step_ms", "threads", "params"} as the last stdout line, plus the int8 forward
 * (`forward_int8_ms`, `forward_int8_rel_err`; skip with --no-int8).
 */
export const PARAMS = 11_073_938;

/** Zero-pads time by k−1 frames in front and H, W by 1 on each side, then a 3×3×3 conv with stride (1, s, s). */
export class CausalConv3d extends Module {
  conv: InstanceType<typeof Conv3d>;
  constructor(
    cin: number,
    cout: number,
    readonly spatialStride = 1,
  ) {
    super();
    this.conv = new Conv3d(cin, cout, 3, { stride: [1, spatialStride, spatialStride] });
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(
      E.pad(x, [
        [2, 0],
        [1, 1],
        [1, 1],
      ]),
    );
  }
}

export class ResBlock extends Module {
  norm1: GroupNorm;
  conv1: CausalConv3d;
  norm2: GroupNorm;
  conv2: CausalConv3d;
  constructor(c: number) {
    super();
    this.norm1 = new GroupNorm(32, c, 1e-5);
    this.conv1 = new CausalConv3d(c, c);
    this.norm2 = new GroupNorm(32, c, 1e-5);
    this.conv2 = new CausalConv3d(c, c);
  }
  forward(x: Tensor): Tensor {
    const h = this.conv1.forward(E.silu(this.norm1.forward(x)));
    return E.add(x, this.conv2.forward(E.silu(this.norm2.forward(h))));
  }
}

export class BenchEncoder extends Module {
  readonly layers: Module[];
  constructor() {
    super();
    this.layers = [
      new CausalConv3d(3, 64),
      new ResBlock(64),
      new CausalConv3d(64, 128, 2),
      new ResBlock(128),
      new CausalConv3d(128, 256, 2),
      new ResBlock(256),
      new CausalConv3d(256, 256, 2),
      new ResBlock(256),
      new Conv3d(256, 18, 1),
    ];
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = (l as unknown as { forward(t: Tensor): Tensor }).forward(y);
    return y;
  }
}

export async function main(args: string[]): Promise<void> {
  const threads = Number(args[0] ?? 2);
  E.setRuntimeDefaults({ threads });
  E.seed(0);
  const model = new BenchEncoder();
  const params = model.parameterCount();
  if (params !== PARAMS) throw new Error(`bench encoder has ${params} parameters, expected ${PARAMS}`);
  const x = E.concrete(E.defaultRng().normal(3 * 17 * 64 * 64), [1, 3, 17, 64, 64], 'float32');

  console.error(`bench encoder: ${params} params, input [1,3,17,64,64], ${threads} threads`);
  model.eval();
  const fwd = E.jit((v: Tensor) => model.forward(v), { name: 'bench_forward' });
  let t = performance.now();
  fwd.compile(x);
  console.error(`forward compiled in ${(performance.now() - t).toFixed(0)} ms`);
  const forwardMs = timeMs(() => fwd(x), 2, 5, 'forward');
  console.error(`forward median ${forwardMs.toFixed(1)} ms`);
  // The same forward through the int8 path (src/engine/quantize.ts: QDQ convolutions → QLinearConv), calibrated
  // on the input; reported beside fp32, with its error relative to the fp32 output's largest magnitude.
  let forwardInt8Ms: number | null = null,
    int8RelErr: number | null = null;
  if (!args.includes('--no-int8')) {
    const fwd8 = E.jit((v: Tensor) => model.forward(v), { name: 'bench_forward_int8', precision: 'int8' });
    t = performance.now();
    fwd8.compile(x);
    console.error(`int8 forward calibrated and compiled in ${(performance.now() - t).toFixed(0)} ms`);
    forwardInt8Ms = timeMs(() => fwd8(x), 2, 5, 'forward int8');
    const a = E.toArray(fwd(x) as Tensor),
      b = E.toArray(fwd8(x) as Tensor);
    let maxAbs = 0,
      maxErr = 0;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i]!));
      maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
    }
    int8RelErr = Math.round((maxErr / maxAbs) * 1e4) / 1e4;
    console.error(
      `int8 forward median ${forwardInt8Ms.toFixed(1)} ms; max error ${int8RelErr} of the output's largest magnitude`,
    );
  }

  model.train();
  const step = new TrainStep(model, (batch: Tensor) => E.mean(E.square(model.forward(batch))), {
    optimizer: new AdamW({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 }),
    schedule: constantLr(1e-4),
  });
  t = performance.now();
  step.run(x);
  console.error(`train step compiled + first step in ${(performance.now() - t).toFixed(0)} ms`);
  const trainMs = timeMs(() => step.run(x), 1, 3, 'train step');
  console.error(`train step median ${trainMs.toFixed(1)} ms`);

  console.log(
    JSON.stringify({
      forward_ms: round1(forwardMs),
      train_step_ms: round1(trainMs),
      threads,
      params,
      ...(forwardInt8Ms !== null
        ? {
            forward_int8_ms: round1(forwardInt8Ms),
            forward_int8_rel_err: int8RelErr,
            int8_weights: E.backend().int8Kernels().weights,
          }
        : {}),
    }),
  );
}
