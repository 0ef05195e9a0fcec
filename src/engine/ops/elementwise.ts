import type { DType } from '../dtype.js';
import { isFloat } from '../dtype.js';
import { apply1, defineOp, type LowerCtx, notDifferentiable, type NotDifferentiable, type OpDef } from '../op.js';
import { broadcastShapes, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { lift, type TensorLike } from './creation.js';
import { reshape } from './movement.js';
import { sum } from './reduce.js';

/** Elementwise ops: broadcasting binary arithmetic, comparisons, logic, and unary math, each with its VJP. */

/** Sums a broadcast gradient back to `shape` (the VJP of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}

type BinaryVjp = (g: Tensor, a: Tensor, b: Tensor, out: Tensor, needs: boolean[]) => [Tensor | null, Tensor | null];

function binaryOp(name: string, onnx: string, vjp: BinaryVjp | NotDifferentiable, outDtype?: DType): OpDef<object> {
  return defineOp<object>({
    name,
    infer([a, b]) {
      if (a.dtype !== b.dtype) throw new Error(`dtypes differ: ${a.dtype} vs ${b.dtype}`);
      return [{ shape: broadcastShapes(a.shape, b.shape), dtype: outDtype ?? a.dtype }];
    },
    lower: (ctx, ins, outs) => ctx.emit(onnx, ins, outs),
    vjp:
      typeof vjp === 'function'
        ? (cts, node, needs) => {
            const [a, b] = node.inputs;
            const [ga, gb] = vjp(cts[0]!, a, b, node.outputs[0], needs);
            return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
          }
        : vjp,
  });
}

function binary(op: OpDef<object>) {
  return (a: TensorLike, b: TensorLike): Tensor => {
    const dtype = typeof a === 'number' ? (typeof b === 'number' ? 'float32' : b.dtype) : a.dtype;
    return apply1(op, [lift(a, dtype), lift(b, dtype)], {});
  };
}

const addOp = binaryOp('add', 'Add', (g) => [g, g]);
const subOp = binaryOp('sub', 'Sub', (g) => [g, neg(g)]);
const mulOp = binaryOp('mul', 'Mul', (g, a, b, _o, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null]);
const divOp = binaryOp('div', 'Div', (g, _a, b, out, n) => [
  n[0] ? div(g, b) : null,
  n[1] ? neg(div(mul(g, out), b)) : null,
]);
const powOp = binaryOp('pow', 'Pow', (g, a, b, out, n) => [
  n[0] ? mul(g, mul(b, pow(a, sub(b, 1)))) : null,
  n[1] ? mul(g, mul(out, log(a))) : null,
]);
// Ties send the whole gradient to the first operand, as PyTorch does for minimum/maximum's subgradient choice.
const minOp = binaryOp('minimum', 'Min', (g, a, b) => {
  const m = lessEqual(a, b);
  return [where(m, g, 0), where(m, 0, g)];
});
const maxOp = binaryOp('maximum', 'Max', (g, a, b) => {
  const m = greaterEqual(a, b);
  return [where(m, g, 0), where(m, 0, g)];
});

export const add = binary(addOp);
export const sub = binary(subOp);
export const mul = binary(mulOp);
export const div = binary(divOp);
export const pow = binary(powOp);
export const minimum = binary(minOp);
export const maximum = binary(maxOp);

const BOOLEAN = notDifferentiable('boolean output');

export const equal = binary(binaryOp('equal', 'Equal', BOOLEAN, 'bool'));
export const less = binary(binaryOp('less', 'Less', BOOLEAN, 'bool'));
export const lessEqual = binary(binaryOp('lessEqual', 'LessOrEqual', BOOLEAN, 'bool'));
export const greater = binary(binaryOp('greater', 'Greater', BOOLEAN, 'bool'));
export const greaterEqual = binary(binaryOp('greaterEqual', 'GreaterOrEqual', BOOLEAN, 'bool'));
export const logicalAnd = binary(binaryOp('logicalAnd', 'And', BOOLEAN, 'bool'));
export const logicalOr = binary(binaryOp('logicalOr', 'Or', BOOLEAN, 'bool'));
export const logicalXor = binary(binaryOp('logicalXor', 'Xor', BOOLEAN, 'bool'));
export const notEqual = (a: TensorLike, b: TensorLike): Tensor => logicalNot(equal(a, b));

const whereOp = defineOp<object>({
  name: 'where',
  infer([c, a, b]) {
    if (c.dtype !== 'bool') throw new Error(`condition must be bool, got ${c.dtype}`);
    if (a.dtype !== b.dtype) throw new Error(`branch dtypes differ: ${a.dtype} vs ${b.dtype}`);
    return [{ shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape)), dtype: a.dtype }];
  },
  lower: (ctx, ins, outs) => ctx.emit('Where', ins, outs),
  vjp([g], { inputs: [c, a, b] }, needs) {
    return [null, needs[1] ? sumTo(where(c, g!, 0), a.shape) : null, needs[2] ? sumTo(where(c, 0, g!), b.shape) : null];
  },
});

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const dtype = typeof a !== 'number' ? a.dtype : typeof b !== 'number' ? b.dtype : 'float32';
  return apply1(whereOp, [cond, lift(a, dtype), lift(b, dtype)], {});
}

// ---- unary ----

type UnaryVjp = (g: Tensor, x: Tensor, out: Tensor) => Tensor | null;

function unaryOp(
  name: string,
  lower: string | ((ctx: LowerCtx, x: string, y: string) => void),
  vjp: UnaryVjp | NotDifferentiable,
  outDtype?: DType,
) {
  const op = defineOp<object>({
    name,
    infer: ([x]) => [{ shape: x.shape, dtype: outDtype ?? x.dtype }],
    lower: (ctx, [x], [y]) => (typeof lower === 'string' ? ctx.emit(lower, [x], [y]) : lower(ctx, x, y)),
    vjp: typeof vjp === 'function' ? (cts, node) => [vjp(cts[0]!, node.inputs[0], node.outputs[0])] : vjp,
  });
  return (x: Tensor): Tensor => apply1(op, [x], {});
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export const neg = unaryOp('neg', 'Neg', (g) => neg(g));
export const abs = unaryOp('abs', 'Abs', (g, x) => mul(g, sign(x)));
export const sign = unaryOp('sign', 'Sign', () => null);
export const floor = unaryOp('floor', 'Floor', () => null);
export const round = unaryOp('round', 'Round', () => null);
export const exp = unaryOp('exp', 'Exp', (g, _x, y) => mul(g, y));
export const log = unaryOp('log', 'Log', (g, x) => div(g, x));
export const sqrt = unaryOp('sqrt', 'Sqrt', (g, _x, y) => div(mul(g, 0.5), y));
export const rsqrt = unaryOp(
  'rsqrt',
  (ctx, x, y) => {
    const s = ctx.fresh();
    ctx.emit('Sqrt', [x], [s]);
    ctx.emit('Reciprocal', [s], [y]);
  },
  (g, _x, y) => mul(g, mul(mul(y, mul(y, y)), -0.5)),
);
export const reciprocal = unaryOp('reciprocal', 'Reciprocal', (g, _x, y) => neg(mul(g, mul(y, y))));
export const square = unaryOp(
  'square',
  (ctx, x, y) => ctx.emit('Mul', [x, x], [y]),
  (g, x) => mul(g, mul(x, 2)),
);
export const tanh = unaryOp('tanh', 'Tanh', (g, _x, y) => mul(g, sub(1, mul(y, y))));
export const sigmoid = unaryOp('sigmoid', 'Sigmoid', (g, _x, y) => mul(g, mul(y, sub(1, y))));
export const relu = unaryOp('relu', 'Relu', (g, x) => where(greater(x, 0), g, 0));
export const silu = unaryOp(
  'silu',
  (ctx, x, y) => {
    const s = ctx.fresh();
    ctx.emit('Sigmoid', [x], [s]);
    ctx.emit('Mul', [x, s], [y]);
  },
  (g, x) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  },
);
export const softplus = unaryOp('softplus', 'Softplus', (g, x) => mul(g, sigmoid(x)));
export const erf = unaryOp('erf', 'Erf', (g, x) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))));
export const sin = unaryOp('sin', 'Sin', (g, x) => mul(g, cos(x)));
export const cos = unaryOp('cos', 'Cos', (g, x) => neg(mul(g, sin(x))));
export const logicalNot = unaryOp('logicalNot', 'Not', BOOLEAN, 'bool');
const isNan = unaryOp('isNaN', 'IsNaN', BOOLEAN, 'bool');
// exported as isNaN without a module-level binding of that name, which would shadow the global isNaN here
export { isNan as isNaN };

/** GELU, exact (erf) or with the tanh approximation; ONNX Gelu-20 lowers to one fused kernel. */
const geluErf = unaryOp(
  'gelu',
  (ctx, x, y) => ctx.emit('Gelu', [x], [y], { approximate: 'none' }),
  (g, x) => {
    const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = mul(exp(mul(mul(x, x), -0.5)), INV_SQRT_2PI);
    return mul(g, add(cdf, mul(x, pdf)));
  },
);
const geluTanh = unaryOp(
  'geluTanh',
  (ctx, x, y) => ctx.emit('Gelu', [x], [y], { approximate: 'tanh' }),
  (g, x) => {
    const x2 = mul(x, x);
    const t = tanh(mul(mul(x, add(mul(x2, 0.044715), 1)), SQRT_2_OVER_PI));
    const dt = mul(sub(1, mul(t, t)), mul(add(mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI));
    return mul(g, add(mul(add(t, 1), 0.5), mul(mul(x, dt), 0.5)));
  },
);
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return approximate === 'tanh' ? geluTanh(x) : geluErf(x);
}

interface ClampAttrs {
  min?: number;
  max?: number;
}
const clampOp = defineOp<ClampAttrs>({
  name: 'clamp',
  infer: ([x]) => [{ shape: x.shape, dtype: x.dtype }],
  lower(ctx, [x], [y], a, node) {
    const d = node.inputs[0].dtype;
    ctx.emit(
      'Clip',
      [x, a.min === undefined ? '' : ctx.scalar(a.min, d), a.max === undefined ? '' : ctx.scalar(a.max, d)],
      [y],
    );
  },
  vjp([g], { inputs: [x], attrs: a }) {
    let keep: Tensor | null = null;
    if (a.min !== undefined) keep = greaterEqual(x, a.min);
    if (a.max !== undefined) keep = keep ? logicalAnd(keep, lessEqual(x, a.max)) : lessEqual(x, a.max);
    return [keep ? where(keep, g!, 0) : g];
  },
});
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  return apply1(clampOp, [x], { min, max });
}

interface CastAttrs {
  dtype: DType;
}
const castOp = defineOp<CastAttrs>({
  name: 'cast',
  infer: ([x], a) => [{ shape: x.shape, dtype: a.dtype }],
  lower: (ctx, ins, outs, a) => ctx.emit('Cast', ins, outs, { to: ONNX_TO[a.dtype] }),
  vjp: ([g], { inputs: [x] }) => [isFloat(x.dtype) && g ? cast(g, x.dtype) : null],
});
const ONNX_TO: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
export function cast(x: Tensor, dtype: DType): Tensor {
  return x.dtype === dtype ? x : apply1(castOp, [x], { dtype });
}
