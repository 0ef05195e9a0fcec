import type { DType, HostArray } from '../dtype.js';

/**
 * What the engine needs from a runtime, so that onnxruntime-node (synchronous, native) and onnxruntime-web
 * (asynchronous, WebGPU/WASM) can stand side by side. The engine core talks only to this interface; an entry
 * point (src/engine/index.ts for Node) installs one backend before anything runs.
 */

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: HostArray;
}

export interface RuntimeOptions {
  /** intra-op threads (default: the backend's `defaultThreads()`). */
  threads?: number;
  /** ORT graph optimisation level. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  executionProviders?: string[];
  /** Write an ORT profile (chrome-trace JSON) per session, file names starting with this prefix (where supported). */
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

/** One loaded model. Outputs come back in `outputNames` order. */
export interface BackendSession {
  /**
   * Present on backends that can run without yielding (onnxruntime-node); eager ops and `jit` calls need it.
   * `outputs`, where given, are buffers the run writes its outputs into (the caller allocated them for the
   * outputs' static shapes), so no second host copy of a big output exists.
   */
  runSync?(inputs: HostTensor[], outputs?: HostTensor[]): HostTensor[];
  run(inputs: HostTensor[]): Promise<HostTensor[]>;
  /** Ends profiling and writes the profile (sessions opened with `profilePrefix`). */
  endProfiling?(): void;
  dispose(): void;
}

/**
 * How int8 weights must be stored for this CPU's integer kernels to be exact.
 * - 'int8': signed 8-bit weights (±127) with uint8 activations: right where the u8×s8 dot product accumulates in
 *   32 bits (x86 VNNI / AMX, ARM).
 * - 'int7': signed weights in [−64, 64], for x86 CPUs without VNNI, whose u8×s8 kernels (VPMADDUBSW) add pairs of
 *   products in saturating 16-bit lanes (255·127·2 > 32767, but 255·64·2 < 32767): keeps those fast kernels at
 *   one bit less weight precision.
 * - 'uint8': weights shifted to uint8 (zero point 128), so that onnxruntime runs its u8×u8 kernels, which widen
 *   both operands to 16 bits before multiplying: exact on any x86 CPU (the same numbers as 'int8' with VNNI), but
 *   slower.
 */
export type Int8Weights = 'int8' | 'uint8' | 'int7';
export const INT8_WEIGHTS: readonly Int8Weights[] = ['int8', 'uint8', 'int7'];

export interface Int8Kernels {
  weights: Int8Weights;
  /** Why: the CPU feature that decided it, or the override that forced it. */
  reason: string;
}

export interface Backend {
  /** e.g. 'onnxruntime-node 1.30.0'. */
  readonly name: string;
  createSession(model: Uint8Array, inputNames: string[], outputNames: string[], opts: RuntimeOptions): BackendSession;
  /** Threads a session uses when the caller names none. */
  defaultThreads(): number;
  /** The int8 weight format this machine's kernels need. */
  int8Kernels(): Int8Kernels;
  /** The model as the runtime optimises it (fusions applied), where the runtime can write it out. */
  optimizedModel?(model: Uint8Array, opts: RuntimeOptions): Uint8Array;
  /** Writes a file (atomically), where the host has files. */
  writeFile?(path: string, bytes: Uint8Array): void;
}

let installed: Backend | null = null;

export function installBackend(b: Backend): void {
  installed = b;
}

export function backend(): Backend {
  if (!installed)
    throw new Error(
      'no engine backend is installed (import the engine through ' +
        'src/engine/index.ts, or install one with installBackend)',
    );
  return installed;
}
