import { Rng } from '../util/rng.js';

/**
 * The engine's default host RNG: eager noise, and the noise inputs of compiled functions that are called without
 * an explicit generator. Seed it (or swap it) for reproducible runs.
 */
let rng: Rng = new Rng(0);

export function defaultRng(): Rng {
  return rng;
}

export function setDefaultRng(r: Rng): void {
  rng = r;
}

export function seed(s: number): void {
  rng = new Rng(s);
}
