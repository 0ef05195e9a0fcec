import { isFloat } from './dtype.js';
import { type Node, operands } from './op.js';
import { add, cast } from './ops/elementwise.js';
import { onesLike, zerosLike } from './ops/creation.js';
import { sameShape, fmt } from './shape.js';
import { currentGraph, type Tensor } from './tensor.js';

/**
 * Reverse-mode autodiff over the graph being traced. Only nodes on a path from `xs` to `ys` are visited, in
 * reverse recording order; each node's VJP (from the op registry) adds backward nodes to the same graph, so
 * forward, backward and optimizer update all end up in one ONNX model.
 */
export function gradients(ys: Tensor | Tensor[], xs: Tensor[], dys?: Tensor[]): Tensor[] {
  const graph = currentGraph();
  if (!graph)
    throw new Error('gradients() works on traced graphs: wrap the computation in jit(), valueAndGrad() or grad()');
  const outs = Array.isArray(ys) ? ys : [ys];

  // Forward: which tensors depend on xs (through float values).
  const depends = new Set<Tensor>(xs.filter((x) => isFloat(x.dtype)));
  const active: Node[] = [];
  for (const node of graph.nodes) {
    if (!node.inputs.some((t) => depends.has(t))) continue;
    active.push(node);
    for (const o of node.outputs) if (isFloat(o.dtype)) depends.add(o);
  }

  const cts = new Map<Tensor, Tensor>();
  const wanted = new Set(xs);
  outs.forEach((y, i) => {
    if (!isFloat(y.dtype)) throw new Error(`cannot differentiate the ${y.dtype} output ${y.describe()}`);
    const dy = dys?.[i] ?? onesLike(y);
    if (!sameShape(dy.shape, y.shape))
      throw new Error(`seed gradient ${fmt(dy.shape)} does not match output ${fmt(y.shape)}`);
    accumulate(cts, y, dy);
  });

  for (let n = active.length - 1; n >= 0; n--) {
    const node = active[n]!;
    const outCts = node.outputs.map((o) => cts.get(o) ?? null);
    if (outCts.every((c) => c === null)) continue;
    const vjp = node.op.vjp;
    if (typeof vjp !== 'function')
      throw new Error(
        `op ${node.op.name} is not differentiable (${vjp.notDifferentiable}), ` +
          'but its output lies on the path to the loss',
      );
    const needs = node.inputs.map((t) => depends.has(t));
    const inCts = vjp(operands(outCts), node, needs);
    node.inputs.forEach((t, i) => {
      const g = inCts[i];
      if (!g || !needs[i]) return;
      if (!sameShape(g.shape, t.shape)) {
        throw new Error(`internal: the VJP of ${node.op.name} gave ${fmt(g.shape)} for an input of ${fmt(t.shape)}`);
      }
      accumulate(cts, t, g.dtype === t.dtype ? g : cast(g, t.dtype));
    });
    for (const o of node.outputs) if (!wanted.has(o)) cts.delete(o); // done with it: keeps the map small
  }
  return xs.map((x) => cts.get(x) ?? zerosLike(x));
}

function accumulate(cts: Map<Tensor, Tensor>, t: Tensor, g: Tensor): void {
  const prev = cts.get(t);
  cts.set(t, prev ? add(prev, g) : g);
}
