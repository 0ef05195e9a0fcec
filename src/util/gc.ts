import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection, on demand. A training step returns every parameter and optimizer slot as new
 * buffers; for a model of hundreds of millions of parameters the previous step's buffers (GBs) would otherwise
 * wait for V8's next major GC, which its heuristics may schedule only after the next step has allocated its own —
 * enough to exhaust memory (Open-MAGVIT2's 370 M-parameter step on 24 GB). Node exposes `gc` only behind a flag;
 * setting the flag at run time and fetching `gc` from a fresh context is the documented way to get it.
 */
let gcFn: (() => void) | null | undefined;

export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  if (!gcFn) return false;
  // V8 frees dead array buffers' memory on a background sweeper that a GC only starts; the next GC waits for that
  // sweep to finish. Two GCs in a row therefore return the memory before this call returns.
  gcFn();
  gcFn();
  return true;
}
