/**
 * Seeded, counter-based host RNG: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11; Random123). Used for initialization, dropout masks, noise and the draws of util/sampling, so runs are
 * reproducible.
 *
 * Stream model: a 64-bit key (from the seed, or derived by `fork`) and a block counter. Block i is
 * philox4x32_10(counter = [i mod 2^32, floor(i / 2^32), 0, 0], key) = four 32-bit words, so the output for block i
 * depends only on (key, i). Every method consumes a whole number of blocks (left-over words of its last block are
 * discarded) and advances the counter by that many, so `Rng.fromState(rng.state())` continues exactly the stream
 * the original would have produced. How many blocks each method consumes is documented on it.
 */
import { check } from './errors.js';

/** JSON-able RNG state (for checkpoints): the 64-bit key and the block counter, as decimal strings. */
export interface RngState {
  seed: string;
  counter: string;
}

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const M0H = M0 >>> 16;
const M0L = M0 & 0xffff;
const M1H = M1 >>> 16;
const M1L = M1 & 0xffff;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const ROUNDS = 10;
const MAX_COUNTER = 2 ** 53;
/** Word 3 of the counter used when hashing fork labels; stream blocks always have word 3 = 0. */
const FORK_TAG = 0xf02c5a17;
const TWO_M24 = 2 ** -24;
const TWO_M32 = 2 ** -32;
const TWO_M53 = 2 ** -53;
const TWO_26 = 2 ** 26;
const CHUNK_BLOCKS = 4096;

function keySchedule(k0: number, k1: number): [Int32Array, Int32Array] {
  const s0 = new Int32Array(ROUNDS);
  const s1 = new Int32Array(ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    s0[r] = k0;
    s1[r] = k1;
    k0 = (k0 + W0) | 0;
    k1 = (k1 + W1) | 0;
  }
  return [s0, s1];
}

/**
 * Fills out[4·j .. 4·j+3] (j < nBlocks) with Philox4x32-10 of counter [c0 + j (with carry into c1), c1, c2, c3].
 * The 32×32→64 multiply is split into 16-bit halves (no BigInt).
 */
function philoxFill(
  s0: Int32Array,
  s1: Int32Array,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  nBlocks: number,
  out: Uint32Array,
): void {
  for (let j = 0; j < nBlocks; j++) {
    let x0 = c0 | 0;
    let x1 = c1 | 0;
    let x2 = c2 | 0;
    let x3 = c3 | 0;
    for (let r = 0; r < ROUNDS; r++) {
      // (hi0, lo0) = M0 · x0 ; (hi1, lo1) = M1 · x2
      const a = x0;
      const aL = a & 0xffff;
      const aH = a >>> 16;
      const tA = M0L * aL;
      const midA = M0H * aL + M0L * aH + (tA >>> 16);
      const hi0 = (M0H * aH + ((midA / 65536) | 0)) | 0;
      const lo0 = Math.imul(M0, a);
      const b = x2;
      const bL = b & 0xffff;
      const bH = b >>> 16;
      const tB = M1L * bL;
      const midB = M1H * bL + M1L * bH + (tB >>> 16);
      const hi1 = (M1H * bH + ((midB / 65536) | 0)) | 0;
      const lo1 = Math.imul(M1, b);
      x0 = hi1 ^ x1 ^ s0[r]!;
      x1 = lo1;
      x2 = hi0 ^ x3 ^ s1[r]!;
      x3 = lo0;
    }
    const o = 4 * j;
    out[o] = x0;
    out[o + 1] = x1;
    out[o + 2] = x2;
    out[o + 3] = x3;
    c0 = (c0 + 1) >>> 0;
    if (c0 === 0) c1 = (c1 + 1) >>> 0;
  }
}

/** Philox4x32-10 of one counter (4 words) under one key (2 words); exported for known-answer tests. */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>): Uint32Array {
  check(counter.length === 4 && key.length === 2, 'philox4x32: counter must have 4 words and key 2 words');
  const [s0, s1] = keySchedule(key[0]! | 0, key[1]! | 0);
  const out = new Uint32Array(4);
  philoxFill(s0, s1, counter[0]! >>> 0, counter[1]! >>> 0, counter[2]! >>> 0, counter[3]! >>> 0, 1, out);
  return out;
}

function checkCount(n: number, what: string): void {
  check(Number.isSafeInteger(n) && n >= 0, `${what}: n must be a non-negative integer, got ${n}`);
}

// Standard normal CDF and its inverse (for the truncated normal).

/** erfc(x), fractional error < 1.2e-7 (Numerical Recipes erfcc, Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** Inverse standard normal CDF (P. J. Acklam's rational approximation, relative error < 1.2e-9). */
function normalPpf(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const plow = 0.02425;
  if (p < plow || p > 1 - plow) {
    const q = Math.sqrt(-2 * Math.log(p < plow ? p : 1 - p));
    const x =
      (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q - 2.549732539343734) * q +
        4.374664141464968) *
        q +
        2.938163982698783) /
      ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q + 3.754408661907416) * q + 1);
    return p < plow ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((-3.969683028665376e1 * r + 2.209460984245205e2) * r - 2.759285104469687e2) * r + 1.38357751867269e2) * r -
      3.066479806614716e1) *
      r +
      2.506628277459239) *
      q) /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r - 1.556989798598866e2) * r + 6.680131188771972e1) * r -
      1.328068155288572e1) *
      r +
      1)
  );
}

function labelWords(label: string | number): { type: number; words: number[]; length: number } {
  if (typeof label === 'number') {
    check(Number.isSafeInteger(label), `Rng.fork: a numeric label must be a safe integer, got ${label}`);
    const v = BigInt.asUintN(64, BigInt(label));
    return { type: 1, words: [Number(v & 0xffffffffn), Number(v >> 32n)], length: 8 };
  }
  check(typeof label === 'string', 'Rng.fork: label must be a string or an integer');
  const bytes = new TextEncoder().encode(label);
  const words: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) {
    words.push(
      (bytes[i]! | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16) | ((bytes[i + 3] ?? 0) << 24)) >>> 0,
    );
  }
  return { type: 2, words, length: bytes.length };
}

export class Rng {
  private readonly k0: number;
  private readonly k1: number;
  private readonly s0: Int32Array;
  private readonly s1: Int32Array;
  private ctr: number;
  private readonly scratch = new Uint32Array(4 * CHUNK_BLOCKS);

  /**
   * @param seed any integer; reduced modulo 2^64 to the Philox key (low word = key[0]).
   * @param counter block counter to start at (default 0), < 2^53.
   */
  constructor(seed: number | bigint, counter: bigint = 0n) {
    if (typeof seed === 'number') check(Number.isSafeInteger(seed), `Rng: seed must be an integer, got ${seed}`);
    else check(typeof seed === 'bigint', 'Rng: seed must be a number or bigint');
    check(
      typeof counter === 'bigint' && counter >= 0n && counter <= BigInt(MAX_COUNTER),
      `Rng: counter must be a bigint in [0, 2^53], got ${String(counter)}`,
    );
    const key = BigInt.asUintN(64, BigInt(seed));
    this.k0 = Number(key & 0xffffffffn);
    this.k1 = Number(key >> 32n);
    [this.s0, this.s1] = keySchedule(this.k0 | 0, this.k1 | 0);
    this.ctr = Number(counter);
  }

  /** JSON-able state: `Rng.fromState(r.state())` continues r's stream exactly. */
  state(): RngState {
    return { seed: ((BigInt(this.k1) << 32n) | BigInt(this.k0)).toString(), counter: String(this.ctr) };
  }

  static fromState(s: RngState): Rng {
    check(
      typeof s === 'object' &&
        s !== null &&
        typeof s.seed === 'string' &&
        typeof s.counter === 'string' &&
        /^\d+$/.test(s.seed) &&
        /^\d+$/.test(s.counter),
      () => `Rng.fromState: expected {seed, counter} as decimal strings, got ${JSON.stringify(s)}`,
    );
    const seed = BigInt(s.seed);
    check(seed < 2n ** 64n, `Rng.fromState: seed ${s.seed} does not fit in 64 bits`);
    return new Rng(seed, BigInt(s.counter));
  }

  /** The number of blocks consumed so far (= the counter of the next block). */
  get counter(): bigint {
    return BigInt(this.ctr);
  }

  /**
   * An independent stream whose key is a Philox hash of (this key, label); it starts at counter 0 and does not
   * depend on, or advance, this stream's counter. The same label always gives the same stream; different labels
   * (and the string "1" vs the number 1) give different ones.
   */
  fork(label: string | number): Rng {
    const { type, words, length } = labelWords(label);
    let key = [this.k0, this.k1];
    let j = 0;
    for (let i = 0; i < words.length; i += 2, j++) {
      const out = philox4x32([words[i]!, words[i + 1] ?? 0, j, (FORK_TAG ^ type) >>> 0], key);
      key = [out[0]!, out[1]!];
    }
    const out = philox4x32([length >>> 0, type, j, (FORK_TAG ^ 0xff) >>> 0], key);
    return new Rng((BigInt(out[1]!) << 32n) | BigInt(out[0]!));
  }

  /** Reserves `nBlocks` blocks; returns the first block index. */
  private take(nBlocks: number): number {
    const start = this.ctr;
    check(start + nBlocks <= MAX_COUNTER, 'Rng: counter exhausted (2^53 blocks)');
    this.ctr = start + nBlocks;
    return start;
  }

  /**
   * Generates `nBlocks` blocks starting at block `start` in chunks; calls `sink(words, firstBlock, count)` per chunk
   * (words holds 4·count values, firstBlock is relative to `start`).
   */
  private generate(
    start: number,
    nBlocks: number,
    sink: (w: Uint32Array, firstBlock: number, count: number) => void,
  ): void {
    for (let done = 0; done < nBlocks; done += CHUNK_BLOCKS) {
      const count = Math.min(CHUNK_BLOCKS, nBlocks - done);
      const b = start + done;
      philoxFill(this.s0, this.s1, b % 2 ** 32, Math.floor(b / 2 ** 32), 0, 0, count, this.scratch);
      sink(this.scratch, done, count);
    }
  }

  /** Raw 32-bit words: `n` words, consuming ceil(n / 4) blocks. */
  u32(n: number): Uint32Array {
    checkCount(n, 'Rng.u32');
    const nb = Math.ceil(n / 4);
    const out = new Uint32Array(n);
    this.generate(this.take(nb), nb, (w, first, count) => {
      const o = 4 * first;
      out.set(w.subarray(0, Math.min(4 * count, n - o)), o);
    });
    return out;
  }

  /**
   * `n` uniform random bytes, four per 32-bit word in little-endian order (the words of `u32(ceil(n / 4))`), with
   * no per-byte work: the cheapest bulk noise; ceil(n / 16) blocks.
   */
  bytes(n: number): Uint8Array {
    checkCount(n, 'Rng.bytes');
    const words = this.u32(Math.ceil(n / 4));
    return new Uint8Array(words.buffer, 0, n);
  }

  /** One 32-bit word (consumes one block; use `u32(n)` for many). */
  nextU32(): number {
    const out = new Uint32Array(4);
    const b = this.take(1);
    philoxFill(this.s0, this.s1, b % 2 ** 32, Math.floor(b / 2 ** 32), 0, 0, 1, out);
    return out[0]!;
  }

  /** `n` uniforms in [0, 1) with 24 random bits each (exact float32 values); ceil(n / 4) blocks. */
  uniform(n: number): Float32Array {
    checkCount(n, 'Rng.uniform');
    const nb = Math.ceil(n / 4);
    const out = new Float32Array(n);
    this.generate(this.take(nb), nb, (w, first, count) => {
      const o = 4 * first;
      const m = Math.min(4 * count, n - o);
      for (let i = 0; i < m; i++) out[o + i] = (w[i]! >>> 8) * TWO_M24;
    });
    return out;
  }

  /** `n` doubles in [0, 1) with 53 random bits (two words each); ceil(n / 2) blocks. */
  uniform53(n: number): Float64Array {
    checkCount(n, 'Rng.uniform53');
    const nb = Math.ceil(n / 2);
    const out = new Float64Array(n);
    this.generate(this.take(nb), nb, (w, first, count) => {
      const o = 2 * first;
      const m = Math.min(2 * count, n - o);
      for (let i = 0; i < m; i++) out[o + i] = ((w[2 * i]! >>> 5) * TWO_26 + (w[2 * i + 1]! >>> 6)) * TWO_M53;
    });
    return out;
  }

  /** `n` normals N(mean, std²) by Box–Muller (each block's two word pairs give four values); ceil(n / 4) blocks. */
  normal(n: number, mean = 0, std = 1): Float32Array {
    checkCount(n, 'Rng.normal');
    check(
      Number.isFinite(mean) && Number.isFinite(std) && std >= 0,
      `Rng.normal: need finite mean and std >= 0, got ${mean}, ${std}`,
    );
    const nb = Math.ceil(n / 4);
    const out = new Float32Array(n);
    const twoPi = 2 * Math.PI;
    this.generate(this.take(nb), nb, (w, first, count) => {
      const o = 4 * first;
      const m = Math.min(4 * count, n - o);
      for (let i = 0; i < m; i += 2) {
        const u1 = (w[i]! + 1) * TWO_M32; // (0, 1]
        const theta = twoPi * w[i + 1]! * TWO_M32;
        const r = std * Math.sqrt(-2 * Math.log(u1));
        out[o + i] = mean + r * Math.cos(theta);
        if (i + 1 < m) out[o + i + 1] = mean + r * Math.sin(theta);
      }
    });
    return out;
  }

  /**
   * `n` samples of N(0, std²) truncated to [a, b] (absolute bounds, as torch.nn.init.trunc_normal_; default
   * [−2·std, 2·std]) by inverse-CDF sampling: every value uses one 53-bit uniform; ceil(n / 2) blocks.
   */
  truncatedNormal(n: number, std = 1, a = -2 * std, b = 2 * std): Float32Array {
    checkCount(n, 'Rng.truncatedNormal');
    check(Number.isFinite(std) && std > 0, `Rng.truncatedNormal: std must be > 0, got ${std}`);
    check(!Number.isNaN(a) && !Number.isNaN(b) && a < b, `Rng.truncatedNormal: need a < b, got [${a}, ${b}]`);
    // Work in the lower half so small tail probabilities keep their precision; mirror back at the end.
    let lo = a / std;
    let hi = b / std;
    let sign = 1;
    if (lo > 0) {
      [lo, hi] = [-hi, -lo];
      sign = -1;
    }
    const pLo = normalCdf(lo);
    const pHi = normalCdf(hi);
    check(pHi > pLo, `Rng.truncatedNormal: [${a}, ${b}] has no probability mass at std ${std}`);
    const u = this.uniform53(n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let x = normalPpf(pLo + u[i]! * (pHi - pLo));
      x = Math.min(Math.max(x, lo), hi);
      out[i] = sign * std * x;
    }
    return out;
  }

  /** `n` Bernoulli(p) draws as 0/1 bytes (P(1) = p, exactly p·2^32 of the 2^32 word values); ceil(n / 4) blocks. */
  bernoulli(n: number, p: number): Uint8Array {
    checkCount(n, 'Rng.bernoulli');
    check(p >= 0 && p <= 1, `Rng.bernoulli: p must be in [0, 1], got ${p}`);
    const thr = p * 2 ** 32;
    const nb = Math.ceil(n / 4);
    const out = new Uint8Array(n);
    this.generate(this.take(nb), nb, (w, first, count) => {
      const o = 4 * first;
      const m = Math.min(4 * count, n - o);
      for (let i = 0; i < m; i++) out[o + i] = w[i]! < thr ? 1 : 0;
    });
    return out;
  }

  /** `n` integers uniform in [lo, hi) (53-bit uniforms, bias < 2^-21); ceil(n / 2) blocks. */
  randint(n: number, lo: number, hi: number): Int32Array {
    checkCount(n, 'Rng.randint');
    check(
      Number.isInteger(lo) && Number.isInteger(hi) && lo < hi && lo >= -(2 ** 31) && hi <= 2 ** 31,
      `Rng.randint: need integers -2^31 <= lo < hi <= 2^31, got [${lo}, ${hi})`,
    );
    const range = hi - lo;
    const u = this.uniform53(n);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + Math.min(range - 1, Math.floor(u[i]! * range));
    return out;
  }

  /** A uniformly random permutation of 0..n−1 (Fisher–Yates); ceil((n − 1) / 2) blocks. */
  permutation(n: number): Int32Array {
    checkCount(n, 'Rng.permutation');
    check(n <= 2 ** 31, `Rng.permutation: n must be <= 2^31, got ${n}`);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    if (n < 2) return out;
    const u = this.uniform53(n - 1);
    for (let i = n - 1, k = 0; i > 0; i--, k++) {
      const j = Math.min(i, Math.floor(u[k]! * (i + 1)));
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return out;
  }
}
