import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { DType, HostArray } from './dtype.js';

/**
 * The onnxruntime wrapper, and the only file that talks to it. Sessions run synchronously through
 * onnxruntime-node's native binding (its public `run` is the same call behind a setImmediate), which lets eager
 * ops and training steps be plain function calls. `run` blocks the event loop: long jobs update progress between
 * steps, and can move into a worker thread.
 */
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, { type: string; data: HostArray; dims: readonly number[] }>;
  endProfiling(): void;
  dispose(): void;
}
const require = createRequire(import.meta.url);
const bindingModule = require('onnxruntime-node/dist/binding.js') as {
  binding: { InferenceSession: new () => BindingSession };
  initOrt: () => void;
};

export interface RuntimeOptions {
  /** intra-op threads (default: VTOK_THREADS or all cores). */
  threads?: number;
  /** ORT graph optimisation level. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Where ORT should write the optimised model (for inspection). */
  optimizedModelPath?: string;
  executionProviders?: string[];
  /** Write an ORT profile (chrome-trace JSON) per session, file names starting with this prefix. */
  profilePrefix?: string;
  /**
   * Keep freed intermediate buffers in ORT's arena between runs (default true: fastest for many small runs).
   * Off, a run's activations go back to the system when it ends: big training steps, whose parameters and
   * optimizer state also live in JS buffers, then peak at one step's working set instead of arena + buffers.
   */
  memoryArena?: boolean;
  /** ORT session config entries (`session.*` keys), passed as the `extra` session option. */
  extra?: Record<string, string>;
}

let defaults: RuntimeOptions = {};
export function setRuntimeDefaults(o: RuntimeOptions): void {
  defaults = { ...defaults, ...o };
}

export function defaultThreads(): number {
  const env = Number(process.env.VTOK_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

/** Sessions still writing a profile; `endProfiling()` flushes them all (e.g. at the end of a benchmark). */
const profiling = new Set<Session>();
export function endProfiling(): void {
  for (const s of [...profiling]) s.endProfiling();
}

export interface HostTensor { dtype: DType; shape: number[]; data: HostArray }

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32', float16: 'float16', float64: 'float64', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'bool',
};

export class Session {
  private readonly session: BindingSession;

  constructor(model: Uint8Array, readonly inputNames: string[], readonly outputNames: string[], opts: RuntimeOptions = {}) {
    const o = { ...defaults, ...opts };
    bindingModule.initOrt();
    this.session = new bindingModule.binding.InferenceSession();
    const options: Record<string, unknown> = {
      executionProviders: o.executionProviders ?? ['cpu'],
      intraOpNumThreads: o.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      graphOptimizationLevel: o.optimization ?? 'all',
      enableCpuMemArena: o.memoryArena ?? true,
      enableMemPattern: true,
      executionMode: 'sequential',
    };
    if (o.optimizedModelPath) options.optimizedModelFilePath = o.optimizedModelPath;
    if (o.profilePrefix) {
      options.enableProfiling = true;
      options.profileFilePrefix = o.profilePrefix;
      profiling.add(this);
    }
    if (o.extra) options.extra = o.extra;
    this.session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, options);
  }

  run(inputs: HostTensor[]): HostTensor[] {
    const feeds: Record<string, ort.Tensor> = {};
    inputs.forEach((t, i) => {
      feeds[this.inputNames[i]] = new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, t.shape);
    });
    const fetches: Record<string, null> = {};
    for (const n of this.outputNames) fetches[n] = null;
    const out = this.session.run(feeds, fetches, {});
    return this.outputNames.map((n) => {
      const r = out[n];
      return { dtype: r.type as DType, shape: [...r.dims], data: r.data };
    });
  }

  /** Ends profiling (sessions opened with profilePrefix) and writes the profile file. */
  endProfiling(): void {
    if (profiling.delete(this)) this.session.endProfiling();
  }

  dispose(): void {
    this.session.dispose();
  }
}
