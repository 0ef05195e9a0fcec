import { apply, apply1, defineOp, type OpDef } from '../op.js';
import type { Tensor } from '../tensor.js';

/** Gradient control: stop-gradient, and a custom-VJP hook for straight-through estimators and the like. */

const stopOp = defineOp<object>({
  name: 'stopGradient',
  infer: ([x]) => [{ shape: x.shape, dtype: x.dtype }],
  lower: (ctx, ins, outs) => ctx.emit('Identity', ins, outs),
  vjp: () => [null],
});

/** Identity in the forward pass; no gradient flows through. */
export function stopGradient(x: Tensor): Tensor {
  return apply1(stopOp, [x], {});
}

interface CustomAttrs {
  nPrimals: number;
  bwd: (grads: (Tensor | null)[], primals: Tensor[], outputs: Tensor[]) => (Tensor | null)[];
}

/**
 * The outputs of `fwd` pass through unchanged (Identity); their gradients go to the primal inputs through `bwd`
 * instead of through the ops `fwd` recorded. The node lists the primals and fwd's outputs as inputs so both
 * are live in the graph; fwd's outputs get no cotangent, so autodiff never walks into fwd's own ops.
 */
const customOp: OpDef<CustomAttrs> = defineOp<CustomAttrs>({
  name: 'customVjp',
  infer: (ins, a) => ins.slice(a.nPrimals).map((t) => ({ shape: t.shape, dtype: t.dtype })),
  lower(ctx, ins, outs, a) {
    outs.forEach((o, i) => {
      ctx.emit('Identity', [ins[a.nPrimals + i]!], [o]);
    });
  },
  vjp(cts, node) {
    const primals = node.inputs.slice(0, node.attrs.nPrimals);
    const grads = node.attrs.bwd(cts, primals, node.outputs);
    if (grads.length !== primals.length)
      throw new Error(`customVjp: bwd returned ${grads.length} gradients for ${primals.length} inputs`);
    return [...grads, ...node.outputs.map(() => null)];
  },
});

export function customVjp(
  fwd: (...primals: Tensor[]) => Tensor[],
  bwd: CustomAttrs['bwd'],
): (...primals: Tensor[]) => Tensor[] {
  return (...primals) => {
    const outs = fwd(...primals);
    return apply(customOp, [...primals, ...outs], { nPrimals: primals.length, bwd });
  };
}

/** x in the forward pass, with the gradient of `ghost`: ghost + stopGradient(x − ghost) (straight-through). */
export function straightThrough(x: Tensor, ghost: Tensor): Tensor {
  const [y] = customVjp(
    () => [x],
    ([g]) => [g!],
  )(ghost);
  return y!;
}
