/**
 * Small seeded random numbers for data generation, independent of the engine's generators. Every sample draws
 * from its own stream, seeded by hashing (dataset seed, sample index), so sample i is the same whatever order or
 * worker produces it.
 */

/** A 32-bit avalanche hash (the murmur3 finaliser) of several integers: decorrelates nearby seeds. */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // Fold in the high bits of indices above 2^32 too.
    h = Math.imul(h ^ Math.floor(p / 2 ** 32), 0x27d4eb2f);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** mulberry32: a fast 32-bit generator, plenty for picking digits, directions and colours. */
export class SeededRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Fisher–Yates shuffle of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
}
