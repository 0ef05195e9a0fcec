/**
 * The vtok engine without a backend: TypeScript tensor code traced into a graph, differentiated and lowered to
 * ONNX, run by whichever backend an entry point installs (src/engine/index.ts installs onnxruntime-node). Imports
 * no Node module, so that a browser build can install onnxruntime-web instead.
 */
import './eager.js';

export { Tensor, Graph, currentGraph, concrete } from './tensor.js';
export type { DType, HostArray } from './dtype.js';
export { registry, defineOp, apply, apply1, notDifferentiable } from './op.js';
export type { OpDef, Node, LowerCtx, Info, Vjp, NotDifferentiable } from './op.js';
export { gradients } from './autodiff.js';
export { trace, jit, exportOnnx, valueAndGrad, grad } from './compile.js';
export type { JitFunction, JitOptions, Compiled } from './compile.js';
export {
  quantizeStatic,
  quantizeModel,
  calibrate,
  calibrationTensors,
  optimizedOpCounts,
  QuantizeError,
} from './quantize.js';
export type { Precision, QuantizeOptions, QuantizeReport, QuantCandidate, Range } from './quantize.js';
export { lowerToOnnx, OPSET } from './onnx.js';
export { Session, setRuntimeDefaults, defaultThreads, endProfiling } from './runtime.js';
export { installBackend, backend, INT8_WEIGHTS } from './backends/backend.js';
export type {
  Backend,
  BackendSession,
  HostTensor,
  RuntimeOptions,
  Int8Kernels,
  Int8Weights,
} from './backends/backend.js';
export { defaultRng, setDefaultRng, seed } from './random.js';
export type { Tree } from './tree.js';
export * from './ops/creation.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/movement.js';
export * from './ops/indexing.js';
export * from './ops/linalg.js';
export * from './ops/conv.js';
export * from './ops/nn.js';
export * from './ops/control.js';
export { toArray, item } from './values.js';
export { gradcheck } from './gradcheck.js';
