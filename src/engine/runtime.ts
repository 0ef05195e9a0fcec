import { backend, type BackendSession, type HostTensor, type RuntimeOptions } from './backends/backend.js';

/**
 * A loaded ONNX model on the installed backend (src/engine/backends/). Sessions are opened with the process-wide
 * defaults (`setRuntimeDefaults`) under the caller's options.
 */
export type { HostTensor, RuntimeOptions };

let defaults: RuntimeOptions = {};
export function setRuntimeDefaults(o: RuntimeOptions): void {
  defaults = { ...defaults, ...o };
}

export function defaultThreads(): number {
  return backend().defaultThreads();
}

/** Sessions still writing a profile; `endProfiling()` flushes them all (e.g. at the end of a benchmark). */
const profiling = new Set<Session>();
export function endProfiling(): void {
  for (const s of [...profiling]) s.endProfiling();
}

export class Session {
  private readonly session: BackendSession;

  constructor(
    model: Uint8Array,
    readonly inputNames: string[],
    readonly outputNames: string[],
    opts: RuntimeOptions = {},
  ) {
    const o = { ...defaults, ...opts };
    this.session = backend().createSession(model, inputNames, outputNames, o);
    if (o.profilePrefix) profiling.add(this);
  }

  /**
   * Runs to completion before returning (backends with a synchronous run only). `outputs`: buffers to write the
   * outputs into (see BackendSession.runSync).
   */
  run(inputs: HostTensor[], outputs?: HostTensor[]): HostTensor[] {
    if (!this.session.runSync) throw new Error(`the ${backend().name} backend runs asynchronously: use runAsync`);
    return this.session.runSync(inputs, outputs);
  }

  runAsync(inputs: HostTensor[]): Promise<HostTensor[]> {
    return this.session.run(inputs);
  }

  /** Ends profiling (sessions opened with profilePrefix) and writes the profile file. */
  endProfiling(): void {
    if (profiling.delete(this)) this.session.endProfiling?.();
  }

  dispose(): void {
    this.session.dispose();
  }
}
