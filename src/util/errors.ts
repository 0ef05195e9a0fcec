/**
 * Typed errors. Every failure a user can cause (bad file, wrong shape, missing weight) is a VtokError that names
 * the file or field and what was expected; the CLI prints its message alone (a stack trace only with --debug).
 */
export class VtokError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'VtokError';
  }
}

/** Throws a VtokError when `cond` is false. */
export function check(cond: unknown, message: string | (() => string), file?: string): asserts cond {
  if (!cond) throw new VtokError(typeof message === 'string' ? message : message(), file);
}
