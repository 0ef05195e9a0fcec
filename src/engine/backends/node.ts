import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError } from '../../util/errors.js';
import type { DType, HostArray } from '../dtype.js';
import {
  type Backend,
  type BackendSession,
  type HostTensor,
  INT8_WEIGHTS,
  type Int8Kernels,
  type Int8Weights,
  type RuntimeOptions,
} from './backend.js';

/**
 * The onnxruntime-node backend, and the only file that talks to it. Sessions run synchronously through
 * onnxruntime-node's native binding (its public `run` is the same call behind a setImmediate), which lets eager
 * ops and training steps be plain function calls. `runSync` blocks the event loop: long jobs update progress
 * between steps, and can move into a worker thread.
 */
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(
    feeds: Record<string, ort.Tensor>,
    fetches: Record<string, ort.Tensor | null>,
    options: object,
  ): Record<string, { type: string; data: HostArray; dims: readonly number[] }>;
  endProfiling(): void;
  dispose(): void;
}
const require = createRequire(import.meta.url);
const bindingModule = require('onnxruntime-node/dist/binding.js') as {
  binding: { InferenceSession: new () => BindingSession };
  initOrt: () => void;
};
const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float16: 'float16',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
};

function defaultThreads(): number {
  const env = Number(process.env.VTOK_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

class NodeSession implements BackendSession {
  private readonly session: BindingSession;
  private profiling: boolean;

  constructor(
    model: Uint8Array,
    private readonly inputNames: string[],
    private readonly outputNames: string[],
    o: RuntimeOptions & { optimizedModelPath?: string },
  ) {
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
    this.profiling = !!o.profilePrefix;
    if (o.profilePrefix) {
      options.enableProfiling = true;
      options.profileFilePrefix = o.profilePrefix;
    }
    if (o.extra) options.extra = o.extra;
    this.session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, options);
  }

  runSync(inputs: HostTensor[], outputs?: HostTensor[]): HostTensor[] {
    const feeds: Record<string, ort.Tensor> = {};
    inputs.forEach((t, i) => {
      feeds[this.inputNames[i]!] = new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, t.shape);
    });
    // A preallocated output is written by onnxruntime in place (an OrtValue over the JS buffer); without one, the
    // binding copies onnxruntime's output buffer into a new JS array while the original is still alive.
    const fetches: Record<string, ort.Tensor | null> = {};
    this.outputNames.forEach((n, i) => {
      const o = outputs?.[i];
      fetches[n] = o && o.data.length > 0 ? new ort.Tensor(ORT_TYPE[o.dtype], o.data as never, o.shape) : null;
    });
    const out = this.session.run(feeds, fetches, {});
    return this.outputNames.map((n, i) => {
      const given = fetches[n];
      if (given) return outputs![i]!;
      const r = out[n]!;
      return { dtype: r.type as DType, shape: [...r.dims], data: r.data };
    });
  }

  run(inputs: HostTensor[]): Promise<HostTensor[]> {
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          resolve(this.runSync(inputs));
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  endProfiling(): void {
    if (this.profiling) this.session.endProfiling();
    this.profiling = false;
  }

  dispose(): void {
    this.session.dispose();
  }
}

/** The x86 flags that give a u8×s8 dot product accumulating straight into 32 bits (no saturating 16-bit step). */
const VNNI_FLAGS = ['amx_int8', 'avx512_vnni', 'avx_vnni'];

/** The CPU's feature flags (Linux /proc/cpuinfo), or null where they cannot be read. */
function cpuFlags(): Set<string> | null {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^flags\s*:/.test(l));
    return line
      ? new Set(
          line
            .replace(/^flags\s*:/, '')
            .trim()
            .split(/\s+/),
        )
      : null;
  } catch {
    return null;
  }
}

/**
 * The int8 weight format for this machine: VTOK_INT8_KERNEL (int8 | uint8 | int7 | auto) forces one; otherwise
 * full-range int8 where the CPU's u8×s8 kernels are exact (VNNI/AMX, or not x86), and 7-bit weights on x86 CPUs
 * without VNNI or whose flags cannot be read: they keep onnxruntime's fast u8×s8 kernels, and measured on
 * MAGVIT-v2 tiny they cost no PSNR against full range (uint8, exact but on the slower u8×u8 kernels, is the
 * override for bit-exactness with VNNI machines).
 */
export function int8KernelsFor(env: string | undefined, cpuArch: string, flags: Set<string> | null): Int8Kernels {
  const forced = env?.trim();
  if (forced && forced !== 'auto') {
    if (!INT8_WEIGHTS.includes(forced as Int8Weights))
      throw new VtokError(`VTOK_INT8_KERNEL="${forced}": expected one of ${INT8_WEIGHTS.join(', ')} or auto`);
    return { weights: forced as Int8Weights, reason: `forced by VTOK_INT8_KERNEL=${forced}` };
  }
  if (cpuArch !== 'x64' && cpuArch !== 'ia32')
    return { weights: 'int8', reason: `${cpuArch}: u8×s8 products accumulate in 32 bits` };
  if (!flags)
    return {
      weights: 'int7',
      reason:
        'x86 CPU features unknown (no /proc/cpuinfo flags): ' +
        '7-bit weights, whose u8×s8 pair sums cannot saturate on any x86',
    };
  const vnni = VNNI_FLAGS.find((f) => flags.has(f));
  if (vnni) return { weights: 'int8', reason: `${vnni}: u8×s8 dot products accumulate in 32 bits` };
  return {
    weights: 'int7',
    reason:
      'no VNNI (avx512_vnni / avx_vnni / amx_int8): u8×s8 kernels ' +
      'add product pairs in saturating 16 bits, so 7-bit weights',
  };
}

export const nodeBackend: Backend = {
  name: `onnxruntime-node ${ortVersion}`,
  createSession: (model, inputNames, outputNames, opts) => new NodeSession(model, inputNames, outputNames, opts),
  defaultThreads,
  int8Kernels: () => int8KernelsFor(process.env.VTOK_INT8_KERNEL, arch(), cpuFlags()),
  optimizedModel(model, opts) {
    const dir = mkdtempSync(join(tmpdir(), 'vtok-opt-'));
    try {
      const path = join(dir, 'optimized.onnx');
      new NodeSession(model, [], [], { ...opts, optimizedModelPath: path }).dispose();
      return readFileSync(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  writeFile: (path, bytes) => writeFileAtomic(path, bytes),
};
