import { VtokError } from '../util/errors.js';

/**
 * A binary range coder (the LZMA construction: 32-bit range, carry propagated through a one-byte cache) driven by
 * adaptive bit models. npm's only maintained range coder (@thi.ng/range-coder) codes bytes under its own fixed
 * model, and a codec needs its own probability models, hence this small one.
 *
 * Probabilities are 12-bit: p0 = P(bit = 0) · 4096, in [1, 4095].
 */

const PROB_BITS = 12;
const TOP = 2 ** 24;
const TWO32 = 2 ** 32;

/**
 * Adaptive bit models, frequency counted: P(0) = (n0 + ½) / (n0 + n1 + 1) (the Krichevsky–Trofimov estimate,
 * good from the first symbol on), both counts halved past `limit` so that the model follows drifting statistics.
 */
export class BitModels {
  private n0: Uint16Array;
  private n1: Uint16Array;
  constructor(
    readonly size: number,
    private readonly limit = 60,
  ) {
    this.n0 = new Uint16Array(size);
    this.n1 = new Uint16Array(size);
  }

  p0(ctx: number): number {
    const a = this.n0[ctx]!,
      b = this.n1[ctx]!;
    const p = Math.round(((a + 0.5) / (a + b + 1)) * 4096);
    return Math.min(Math.max(p, 1), 4095);
  }

  update(ctx: number, bit: number): void {
    if (bit) this.n1[ctx]!++;
    else this.n0[ctx]!++;
    if (this.n0[ctx]! + this.n1[ctx]! > this.limit) {
      this.n0[ctx] = (this.n0[ctx]! + 1) >>> 1;
      this.n1[ctx] = (this.n1[ctx]! + 1) >>> 1;
    }
  }
}

export class RangeEncoder {
  private low = 0;
  private range = 0xffffffff;
  private cache = 0;
  private cacheSize = 1;
  private out: number[] = [];

  encode(models: BitModels, ctx: number, bit: number): void {
    const bound = (this.range >>> PROB_BITS) * models.p0(ctx);
    if (bit) {
      this.low += bound;
      this.range -= bound;
    } else this.range = bound;
    models.update(ctx, bit);
    while (this.range < TOP) {
      this.range = (this.range * 256) >>> 0;
      this.shiftLow();
    }
  }

  private shiftLow(): void {
    if (this.low < 0xff000000 || this.low >= TWO32) {
      const carry = this.low >= TWO32 ? 1 : 0;
      let temp = this.cache;
      do {
        this.out.push((temp + carry) & 0xff);
        temp = 0xff;
      } while (--this.cacheSize !== 0);
      this.cache = Math.floor(this.low / TOP) & 0xff;
    }
    this.cacheSize++;
    this.low = (this.low % TOP) * 256;
  }

  /** Flushes the coder; the bytes of the whole stream. */
  finish(): Uint8Array {
    for (let i = 0; i < 5; i++) this.shiftLow();
    return Uint8Array.from(this.out);
  }
}

export class RangeDecoder {
  private range = 0xffffffff;
  private code = 0;
  private pos = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file?: string,
  ) {
    if (bytes.length < 5 || bytes[0] !== 0) throw new VtokError('entropy-coded stream is damaged (bad start)', file);
    for (let i = 0; i < 5; i++) this.code = (this.code * 256 + this.next()) % TWO32;
  }

  private next(): number {
    // Reading past the end means the stream was cut or corrupted: a well-formed stream never needs more bytes.
    if (this.pos > this.bytes.length + 4)
      throw new VtokError('entropy-coded stream ends early (truncated or damaged)', this.file);
    const byte = this.pos < this.bytes.length ? this.bytes[this.pos]! : 0;
    this.pos++;
    return byte;
  }

  decode(models: BitModels, ctx: number): number {
    const bound = (this.range >>> PROB_BITS) * models.p0(ctx);
    let bit: number;
    if (this.code < bound) {
      this.range = bound;
      bit = 0;
    } else {
      this.code -= bound;
      this.range -= bound;
      bit = 1;
    }
    models.update(ctx, bit);
    while (this.range < TOP) {
      this.range = (this.range * 256) >>> 0;
      this.code = (this.code * 256 + this.next()) % TWO32;
    }
    return bit;
  }

  /** Bytes consumed so far (a well-formed stream ends within its 5 flush bytes). */
  get consumed(): number {
    return this.pos;
  }
}
