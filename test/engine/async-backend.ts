import type { Backend } from '../../src/engine/core.js';

/**
 * `inner`'s sessions behind the Promise-only interface of an asynchronous backend (as onnxruntime-web is): no
 * runSync, no optimised-model dump, no file writing. Each session it opens is counted in `opened`.
 */
export function asyncOnly(inner: Backend, opened = { sessions: 0 }): Backend {
  return {
    name: 'async test backend',
    createSession(model, inputs, outputs, opts) {
      opened.sessions++;
      const s = inner.createSession(model, inputs, outputs, opts);
      return { run: (feeds) => s.run(feeds), dispose: () => s.dispose() };
    },
    defaultThreads: () => inner.defaultThreads(),
    int8Kernels: () => inner.int8Kernels(),
  };
}
