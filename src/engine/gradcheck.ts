import { Rng } from '../util/rng.js';
import { valueAndGrad, jit } from './compile.js';
import { isFloat } from './dtype.js';
import { mul } from './ops/elementwise.js';
import { sum } from './ops/reduce.js';
import { concrete, type Tensor } from './tensor.js';
import { trace } from './compile.js';

/**
 * Finite-difference check of reverse-mode gradients. The output is projected to a scalar with fixed random
 * weights; along several random directions v, ⟨∇L, v⟩ is compared with the central difference
 * (L(x+εv) − L(x−εv)) / 2ε, Richardson-extrapolated. Runs in the inputs' dtype (float32 for ops without float64 kernels
 * on ORT CPU).
 */
export interface GradcheckResult {
  maxError: number;
  checks: { analytic: number; numeric: number; error: number }[];
}

export function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; directions?: number; seed?: number; wrt?: number[] } = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-2;
  const rng = new Rng(opts.seed ?? 1234);
  const wrt = opts.wrt ?? inputs.flatMap((t, i) => (isFloat(t.dtype) ? [i] : []));
  const outShape = trace((...xs) => f(...(xs as Tensor[])), inputs).graph.outputs[0]!.shape;
  const w = rng.normal(outShape.reduce((a, b) => a * b, 1));
  const weights = concrete(
    inputs[wrt[0]!]!.dtype === 'float64' ? Float64Array.from(w) : w,
    outShape,
    inputs[wrt[0]!]!.dtype,
  );
  const loss = (...xs: Tensor[]) => sum(mul(f(...xs), weights));
  const lossJit = jit(loss);
  const [, grads] = valueAndGrad(loss, { argnums: wrt })(...inputs) as [Tensor, Tensor[]];

  const checks: GradcheckResult['checks'] = [];
  for (let d = 0; d < (opts.directions ?? 3); d++) {
    const dirs = wrt.map((i) => rng.normal(inputs[i]!.size));
    let analytic = 0;
    wrt.forEach((_, k) => {
      const g = grads[k]!.data as Float32Array | Float64Array;
      for (let j = 0; j < g.length; j++) analytic += g[j]! * dirs[k]![j]!;
    });
    const shifted = (h: number) =>
      inputs.map((t, i) => {
        const k = wrt.indexOf(i);
        if (k < 0) return t;
        const x =
          t.dtype === 'float64' ? Float64Array.from(t.data as Float64Array) : Float32Array.from(t.data as Float32Array);
        for (let j = 0; j < x.length; j++) x[j]! += h * dirs[k]![j]!;
        return concrete(x, t.shape, t.dtype);
      });
    const at = (h: number) => (lossJit(...shifted(h)) as Tensor).data[0] as number;
    const central = (h: number) => (at(h) - at(-h)) / (2 * h);
    // Richardson extrapolation cancels the O(ε²) truncation term of the central difference.
    const numeric = (4 * central(eps / 2) - central(eps)) / 3;
    const error = Math.abs(analytic - numeric) / Math.max(1, Math.abs(analytic), Math.abs(numeric));
    checks.push({ analytic, numeric, error });
  }
  return { maxError: Math.max(...checks.map((c) => c.error)), checks };
}
