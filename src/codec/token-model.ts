import { VtokError, check } from '../util/errors.js';
import { BitModels, type RangeDecoder, type RangeEncoder } from './range-coder.js';

/**
 * Probability models for token ids, coded bit by bit (channel 0, the lowest LFQ bit, first). Both adapt as they
 * code, so nothing is stored but the ids' code; the models carry over from one clip to the next in a file.
 *
 * - 'frequency': the ids' bits split into groups of at most 9 (an 18-bit id = two 9-bit halves, as LFQ's codebook
 *   entropy is estimated), each group coded down a binary tree: an adaptive frequency model over each group's
 *   values (≤ 512 symbols), which adapts within a few hundred tokens where one over 2^18 ids could not.
 * - 'context': each bit conditioned on its position and on the same bit of the left, upper and previous-frame
 *   neighbour tokens (0, 1 or absent: 27 cases). LFQ bits are signs of latent channels, which vary smoothly over
 *   space and time, so neighbours predict them.
 */
export const TOKEN_MODELS = ['frequency', 'context'] as const;
export type TokenModelName = (typeof TOKEN_MODELS)[number];

function groupsOf(bits: number): number[] {
  const n = Math.ceil(bits / 9);
  return Array.from({ length: n }, (_, i) => Math.floor((bits * (i + 1)) / n) - Math.floor((bits * i) / n));
}

/** Token grid as [t, h, w] (a 1-D grid of n tokens is [1, 1, n]; 2-D [h, w] is [1, h, w]). */
function grid3(grid: number[]): [number, number, number] {
  check(
    grid.length >= 1 && grid.length <= 3 && grid.every((g) => Number.isInteger(g) && g > 0),
    `token grid must have 1–3 positive sizes, got [${grid.join(', ')}]`,
  );
  const g = [1, 1, ...grid].slice(-3);
  return [g[0]!, g[1]!, g[2]!];
}

export class TokenCoderState {
  readonly models: BitModels;
  private readonly groups: number[];
  constructor(
    readonly model: TokenModelName,
    readonly bits: number,
  ) {
    check(Number.isInteger(bits) && bits >= 1 && bits <= 30, `vocabulary bits must be 1..30, got ${bits}`);
    this.groups = groupsOf(bits);
    const size = model === 'frequency' ? this.groups.reduce((a, g) => a + 2 ** g, 0) : bits * 27;
    this.models = new BitModels(size);
  }

  /**
   * Visits every bit of every id in coding order with its context; `code(ctx, i, b)` codes (or decodes and
   * returns) bit b of id i.
   */
  private walk(ids: Int32Array, grid: number[], code: (ctx: number, i: number, b: number) => number): void {
    const [T, H, W] = grid3(grid);
    const n = T * H * W;
    check(ids.length === n, `clip has ${ids.length} ids, its grid [${grid.join(', ')}] holds ${n}`);
    const bits = this.bits;
    for (let i = 0; i < n; i++) {
      const w = i % W,
        h = Math.floor(i / W) % H,
        t = Math.floor(i / (W * H));
      if (this.model === 'frequency') {
        let b = 0,
          base = 0;
        for (const g of this.groups) {
          let node = 1;
          for (let k = 0; k < g; k++, b++) {
            const bit = code(base + node, i, b);
            node = node * 2 + bit;
          }
          base += 2 ** g;
        }
      } else {
        for (let b = 0; b < bits; b++) {
          const nb = (j: number, ok: boolean) => (ok ? (ids[j]! >>> b) & 1 : 2);
          const ctx = nb(i - 1, w > 0) + 3 * nb(i - W, h > 0) + 9 * nb(i - W * H, t > 0);
          code(b * 27 + ctx, i, b);
        }
      }
    }
  }

  encodeClip(enc: RangeEncoder, ids: Int32Array, grid: number[], vocabSize: number): void {
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i]!;
      if (!(Number.isInteger(v) && v >= 0 && v < vocabSize))
        throw new VtokError(`token ${i} is ${v}, outside the vocabulary [0, ${vocabSize})`);
    }
    this.walk(ids, grid, (ctx, i, b) => {
      const bit = (ids[i]! >>> b) & 1;
      enc.encode(this.models, ctx, bit);
      return bit;
    });
  }

  decodeClip(dec: RangeDecoder, grid: number[], vocabSize: number, file?: string): Int32Array {
    const [T, H, W] = grid3(grid);
    const ids = new Int32Array(T * H * W);
    this.walk(ids, grid, (ctx, i, b) => {
      const bit = dec.decode(this.models, ctx);
      ids[i] = ids[i]! | (bit << b);
      return bit;
    });
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= vocabSize || ids[i]! < 0)
        throw new VtokError(
          `decoded token ${i} is ${ids[i]}, outside the vocabulary [0, ${vocabSize}): the file is damaged`,
          file,
        );
    }
    return ids;
  }
}
