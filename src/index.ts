/** vtok as a library: the engine, the nn layer, and (as they land) tokenizers, data, metrics and I/O. */
export * as E from './engine/index.js';
export * as nn from './nn/index.js';
export * as nnTrain from './nn/train.js';
export { loadModule, loadTensors, saveModule, saveTensors } from './nn/weights-file.js';
export {
  importOnnx,
  OnnxFunction,
  SUPPORTED_OPS,
  IMPORT_OPSETS,
  type OnnxValueInfo,
  type ImportOptions,
} from './onnx-import/onnx-import.js';
export { trainLoop } from './train/loop.js';
export type { TrainTask, LoopOptions } from './train/loop.js';
export type { Tokenizer, TokenGrid } from './tokenizers/tokenizer.js';
export { SHIPPED_MODELS, shippedModel, type ShippedModel, type ShippedRole } from './io/shipped.js';
export {
  decodeFile,
  encodeFile,
  type DecodeFileOptions,
  type DecodeFileResult,
  type EncodeFileOptions,
  type EncodeFileResult,
} from './tokenizers/files.js';
export { trainTokenizer, type TrainTokenizerOptions } from './train/tokenizer-run.js';
export { LM_PRESETS, trainLm, type TrainLmOptions } from './train/prefix-lm-run.js';
