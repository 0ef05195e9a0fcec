/**
 * Long synchronous work written as a generator that yields between its steps (e.g. one sampled token each), so the
 * same code runs straight through (`runSteps`) or hands the event loop a turn now and then (`runStepsAsync`): that
 * is where signals, timers and progress output get their chance, since onnxruntime-node's run blocks the loop.
 */
export type Steps<T> = Generator<void, T, void>;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export type StepsOutcome<T> = { done: true; value: T } | { done: false };

/**
 * Runs `steps`, calling `stop` (which may await, e.g. Interrupt.poll) at most every `everyMs` of work; when it says
 * true the generator is returned early (its `finally` blocks run) and the outcome is `{ done: false }`.
 */
export async function runStepsAsync<T>(
  steps: Steps<T>,
  stop: () => Promise<boolean>,
  everyMs = 100,
): Promise<StepsOutcome<T>> {
  let last = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return { done: true, value: r.value };
    if (performance.now() - last >= everyMs) {
      if (await stop()) {
        steps.return(undefined as T);
        return { done: false };
      }
      last = performance.now();
    }
  }
}
