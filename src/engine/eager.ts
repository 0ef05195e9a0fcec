import { lowerToOnnx } from './onnx.js';
import { type Info, type OpDef, setEagerRunner, apply } from './op.js';
import { Session } from './runtime.js';
import { concrete, Graph, type Tensor, withGraph } from './tensor.js';

/**
 * Eager mode: an op on concrete tensors is compiled as a one-node ONNX model (cached by op, attributes and input
 * signature) and run at once, on the same kernels a compiled graph would use, so both modes give the same numbers.
 */
const cache = new Map<string, Session>();

function key(op: OpDef, inputs: Tensor[], attrs: unknown): string {
  const a = JSON.stringify(attrs, (_, v) => (typeof v === 'function' ? undefined : v));
  return `${op.name}|${a}|${inputs.map((t) => `${t.dtype}${t.shape.join('x')}`).join(';')}`;
}

function runEager(op: OpDef, inputs: Tensor[], attrs: unknown, _infos: Info[]): Tensor[] {
  const k = key(op, inputs, attrs);
  let session = cache.get(k);
  if (!session) {
    const graph = new Graph();
    const symbolic = inputs.map((t) => graph.addInput(t.shape, t.dtype));
    graph.outputs = withGraph(graph, () => apply(op, symbolic, attrs));
    const model = lowerToOnnx(graph, { name: op.name });
    // Single ops gain nothing from graph rewrites, and skipping them keeps eager numbers identical to the op's kernel.
    session = new Session(
      model,
      graph.inputs.map((_, i) => `in${i}`),
      graph.outputs.map((_, i) => `out${i}`),
      { optimization: 'basic' },
    );
    cache.set(k, session);
  }
  return session
    .run(inputs.map((t) => ({ dtype: t.dtype, shape: [...t.shape], data: t.data })))
    .map((o) => concrete(o.data, o.shape, o.dtype));
}

setEagerRunner(runEager);
