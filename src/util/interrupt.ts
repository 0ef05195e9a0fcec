import { VtokError } from './errors.js';

/**
 * A graceful stop for long commands (train, tokenize, generate, studies), the same everywhere:
 *
 * - the first Ctrl-C (SIGINT) or SIGTERM asks the work to stop at its next safe point (after the current step),
 *   where it writes what it must (a checkpoint) and returns; the command then exits with 128 + the signal number;
 * - a second signal while the work is still running ends the process at once (exit 130/143), before any new save
 *   has begun, so the previous checkpoint is what remains;
 * - once the work has started its final save it calls `release()`: from then on a further signal takes the
 *   signal's default action (the process dies at once). Saves are atomic (temp name, then rename), so a save cut
 *   short leaves the previous checkpoint intact and a temp entry that `removeStaleTemps` deletes on the next run.
 *
 * onnxruntime-node's `run` blocks the event loop, so a signal is only seen when the work yields to it: call
 * `poll()` between steps. Call `watchInterrupts` before the work creates any file (temp files included): a signal
 * that came earlier would take its default action and kill the process with the file half made. Once the work
 * has stopped on a signal and `dispose()`d, a further signal ends the process at once with the same exit code.
 */
export interface Interrupt {
  /** The signal that asked to stop, or null while none has. */
  readonly signal: NodeJS.Signals | null;
  /** Lets pending signals be delivered, then says whether a stop was asked for. */
  poll(): Promise<boolean>;
  /** A further signal now ends the process at once (the work is in its final, atomic save). */
  release(): void;
  /**
   * Stops listening: restores the default action of both signals, or, when a signal stopped the work, makes a
   * further one end the process with 130/143 (the command is on its way out; it would otherwise die of it).
   */
  dispose(): void;
}

const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** The exit code for a command stopped by `signal` (128 + its number, as a shell reports it). */
export function exitCodeFor(signal: NodeJS.Signals): number {
  return EXIT[signal] ?? 1;
}

/**
 * Starts listening for SIGINT and SIGTERM. `what` names the work and the first signal's effect for the message a
 * user sees (e.g. "stopping after this step, with a checkpoint"); `cleanup` (synchronous) runs before a second
 * signal ends the process, e.g. to remove a half-written temp file.
 */
export function watchInterrupts(what: string, cleanup?: () => void): Interrupt {
  let signal: NodeJS.Signals | null = null;
  let listening = true;
  let disposed = false;
  const onSignal = (s: NodeJS.Signals) => {
    if (signal !== null) {
      process.stderr.write(`\n${s}: stopping now${cleanup ? '' : '; the last checkpoint written is kept'}\n`);
      cleanup?.();
      process.exit(exitCodeFor(s));
    }
    signal = s;
    process.stderr.write(`\n${s === 'SIGINT' ? 'Ctrl-C' : s}: ${what}; Ctrl-C again to stop at once\n`);
  };
  const stopListening = () => {
    if (!listening) return;
    listening = false;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get signal() {
      return signal;
    },
    async poll() {
      // Two turns of the event loop: the first may still be in the phase that ran the step, the second follows a
      // poll for I/O, which is where libuv delivers signals.
      for (let i = 0; i < 2; i++) await new Promise<void>((r) => setImmediate(r));
      return signal !== null;
    },
    release: stopListening,
    dispose() {
      stopListening();
      if (signal !== null && !disposed) {
        const exit = (s: NodeJS.Signals) => process.exit(exitCodeFor(s));
        process.once('SIGINT', exit);
        process.once('SIGTERM', exit);
      }
      disposed = true;
    },
  };
}

/**
 * Thrown by long work that stopped on a signal after saving what it must; the CLI prints its message (what was
 * kept, how to resume), prefixed with the signal, and exits with 128 + the signal number.
 */
export class Interrupted extends VtokError {
  constructor(
    readonly signal: NodeJS.Signals,
    message: string,
  ) {
    super(`${signal === 'SIGINT' ? 'Ctrl-C' : signal}: ${message}`);
    this.name = 'Interrupted';
  }
}
