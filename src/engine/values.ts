import { toNumbers } from './dtype.js';
import type { Tensor } from './tensor.js';

/** A concrete tensor's values as plain numbers (row-major). */
export function toArray(t: Tensor): number[] {
  return toNumbers(t.data);
}

/** The single value of a one-element concrete tensor. */
export function item(t: Tensor): number {
  if (t.size !== 1) throw new Error(`item() of ${t.describe()}: not a single value`);
  return toNumbers(t.data)[0]!;
}
