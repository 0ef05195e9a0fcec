import { apply1, defineOp } from '../op.js';
import { broadcastShapes, fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, sumTo } from './elementwise.js';
import { swapAxes } from './movement.js';

/** Matrix products with numpy batch broadcasting (ONNX MatMul). Both operands have rank ≥ 2. */

const matmulOp = defineOp<object>({
  name: 'matmul',
  infer([a, b]) {
    if (a.shape.length < 2 || b.shape.length < 2)
      throw new Error('matmul operands need rank ≥ 2 (reshape vectors to matrices)');
    if (a.dtype !== b.dtype) throw new Error(`dtypes differ: ${a.dtype} vs ${b.dtype}`);
    const [m, k] = a.shape.slice(-2) as [number, number],
      [k2, n] = b.shape.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return [{ shape: [...batch, m, n], dtype: a.dtype }];
  },
  lower: (ctx, ins, outs) => ctx.emit('MatMul', ins, outs),
  vjp([g], { inputs: [a, b] }, needs) {
    return [
      needs[0] ? sumTo(matmul(g!, swapAxes(b)), a.shape) : null,
      needs[1] ? sumTo(matmul(swapAxes(a), g!), b.shape) : null,
    ];
  },
});

export function matmul(a: Tensor, b: Tensor): Tensor {
  return apply1(matmulOp, [a, b], {});
}

/** y = x Wᵀ + b with PyTorch's weight layout (out × in). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const y = matmul(x, swapAxes(weight));
  return bias ? add(y, bias) : y;
}
