import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { bindParams, type DecoderLm, Linear, type Mask, type Param } from '../nn/index.js';
import { VtokError, check } from '../util/errors.js';

/**
 * KV-cache decoding for any decoder-shell model (nn/decoder-lm.ts): a prefill program (the sequence's start →
 * every layer's keys/values + the logits at its last position) and a one-token decode program over a fixed-size
 * cache. Both are compiled once per shape (batch, prefill length / cache length, logit range) and reused for every
 * token. What a prefill embeds and how its positions see each other is the model's (`prefillGraph`): the prefix
 * LM's text slot and bidirectional prefix, LARP's class or condition tokens under a causal mask; a decode step is
 * always one token id per row at the next position.
 *
 * The cache lives in host Float32Arrays, one [B, H, capacity, hd] pair per layer. A decode step feeds them as
 * inputs (onnxruntime wraps CPU input buffers without copying), attends over [cache ; new token] without
 * concatenating the cache in-graph (nn/transformer `attend`), and returns only the new token's keys/values, which
 * the host writes into its buffers at the step's position. The head's weight rows of the requested logit range are
 * fed as a view of the head's weight in the prefill and as a transposed copy in decode steps (never sliced
 * in-graph, which would copy the rows every run).
 *
 * `precision: 'int8'` runs decode steps with int8 weights: the blocks' Linear weights and the head's rows of the
 * logit range are baked into the decode program as constants and quantized by the engine (src/engine/quantize.ts:
 * per-column symmetric weights in the CPU's format, activations quantized per call, onnxruntime's
 * DynamicQuantizeMatMul), so a step reads a quarter of the bytes. The prefill stays float32 (it is compute-bound
 * and fills the cache every later step reads). The int8 program is rebuilt when a weight's tensor is replaced.
 */

export interface LogitRange {
  lo: number;
  hi: number;
}

/** One batch's cache: per-layer keys/values and which positions hold a visible key. */
export class KvCacheBuffers {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** [B, capacity]: 1 where a key is filled and visible (false for invalid text positions). */
  readonly valid: Uint8Array;
  /** Positions filled so far (the next token's position). */
  length = 0;

  constructor(
    readonly batch: number,
    readonly layers: number,
    readonly heads: number,
    readonly headDim: number,
    readonly capacity: number,
  ) {
    const n = batch * heads * capacity * headDim;
    this.k = Array.from({ length: layers }, () => new Float32Array(n));
    this.v = Array.from({ length: layers }, () => new Float32Array(n));
    this.valid = new Uint8Array(batch * capacity);
  }

  /** Writes a program's outputs (logits, then every layer's keys, then its values) at positions pos … pos+T−1. */
  writeOutputs(out: Tensor[], pos: number, T: number): void {
    const L = this.layers,
      data = (t: Tensor) => t.data as Float32Array;
    for (let l = 0; l < L; l++) this.write(l, data(out[1 + l]!), data(out[1 + L + l]!), pos, T);
  }

  /** Writes rows [B, H, T, hd] of one layer at positions pos … pos+T−1. */
  write(layer: number, k: Float32Array, v: Float32Array, pos: number, T: number): void {
    const { batch: B, heads: H, capacity: C, headDim: hd } = this;
    for (let bh = 0; bh < B * H; bh++) {
      const src = bh * T * hd,
        dst = (bh * C + pos) * hd;
      this.k[layer]!.set(k.subarray(src, src + T * hd), dst);
      this.v[layer]!.set(v.subarray(src, src + T * hd), dst);
    }
  }
}

/** What one prefill runs: its program's key, its concrete inputs, and which of its positions later ones see. */
export interface PrefillPlan {
  /** Prefills of one key share a program (compiled per input shapes); `prefillGraph` gets the key back. */
  key: string;
  batch: number;
  /** Positions the prefill fills. */
  length: number;
  inputs: Tensor[];
  /** [B, length]: 0 where a prefilled key stays hidden from every later position (default: all visible). */
  visible?: Uint8Array;
}

export interface DecoderOptions {
  /** Weights of decode steps: 'fp32' (default) or 'int8' (see above). */
  precision?: E.Precision;
  /**
   * How fp32 decode steps read the blocks' and the head's weights: 'transposed' (default) from [in, out] copies
   * made once per weight version (faster one-row products, twice the weights' memory), 'as-is' from the weights
   * themselves (no copies: what a large model whose steps run two rows, like guided sampling, wants).
   */
  weights?: 'transposed' | 'as-is';
}

export interface Prefilled {
  cache: KvCacheBuffers;
  logits: Float32Array;
}

/** One program call with its arguments made (compiled programs, weights, cache views), ready to run either way. */
interface ProgramCall<R> {
  run(): Tensor[];
  runAsync(): Promise<Tensor[]>;
  /** Takes the outputs in (into the cache) and gives the call's result. */
  finish(out: Tensor[]): R;
}

function programCall<F extends (...a: never[]) => Tensor[]>(fn: E.JitFunction<F>, args: Parameters<F>) {
  return { run: () => fn(...args), runAsync: () => fn.runAsync(...args) };
}

type PrefillFn = E.JitFunction<(w: Tensor[], head: Tensor, inputs: Tensor[]) => Tensor[]>;
type DecodeFn = E.JitFunction<
  (
    w: Tensor[],
    wt: Tensor[],
    head: Tensor,
    ids: Tensor,
    pos: Tensor,
    valid: Tensor,
    ks: Tensor[],
    vs: Tensor[],
  ) => Tensor[]
>;
type Int8DecodeFn = E.JitFunction<
  (w: Tensor[], ids: Tensor, pos: Tensor, valid: Tensor, ks: Tensor[], vs: Tensor[]) => Tensor[]
>;

/**
 * The compiled prefill/decode programs of one model; `X` is what a prefill is given. Weights are inputs, so a model
 * that keeps training stays current. A model kind subclasses it with its prefill: `plan` turns its input into
 * concrete tensors, `prefillGraph` embeds them (traced) and says how the prefilled positions attend.
 */
export abstract class LmDecoder<X, M extends DecoderLm = DecoderLm> {
  private readonly params: Param[];
  /** The blocks' Linear weights, fed to the decode program transposed (see `transposed`). */
  private readonly linears: Param[];
  private readonly others: Param[];
  private readonly transposes = new Map<Param | string, { source: unknown; t: Tensor }>();
  private readonly prefillFns = new Map<string, PrefillFn>();
  private readonly decodeFn: DecodeFn;
  /** int8 decode programs per logit range, with the weight tensors baked into them. */
  private readonly int8Fns = new Map<string, { weights: Tensor[]; fn: Int8DecodeFn }>();
  readonly precision: E.Precision;
  private readonly copies: boolean;

  constructor(
    readonly model: M,
    opts: DecoderOptions = {},
  ) {
    this.precision = opts.precision ?? 'fp32';
    this.copies = (opts.weights ?? 'transposed') === 'transposed';
    check(
      opts.weights === undefined || opts.weights === 'transposed' || opts.weights === 'as-is',
      `LM decoder: weights must be transposed or as-is, got ${JSON.stringify(opts.weights)}`,
    );
    check(
      this.precision === 'fp32' || this.precision === 'int8',
      `LM decoder: precision must be fp32 or int8, got ${JSON.stringify(opts.precision)}`,
    );
    if (model.cfg.vocabSize === null) throw new VtokError('LM decoder: the model reads vectors, not token ids');
    const head = model.headWeight;
    const linear = new Set<Param>();
    for (const b of model.parts.blocks)
      for (const [, m] of b.namedModules()) if (m instanceof Linear) linear.add(m.weight);
    const params = model.namedParams().map(([, p]) => p);
    this.params = params.filter((p) => p !== head);
    this.linears = this.params.filter((p) => linear.has(p));
    this.others = this.params.filter((p) => !linear.has(p));
    // A one-token step is a matrix-vector product per weight, bound by reading the weights: onnxruntime runs those
    // about twice as fast from [in, out] weights as through a transposed [out, in] operand, so the decode program
    // takes transposed copies (made once per weight version) and binds each Linear to a transpose of its input,
    // which onnxruntime cancels against the Linear's own. With `weights: 'as-is'` it takes the weights themselves.
    const t = (x: Tensor) => (this.copies ? E.swapAxes(x) : x);
    this.decodeFn = E.jit(
      (w: Tensor[], wt: Tensor[], head: Tensor, ids: Tensor, pos: Tensor, valid: Tensor, ks: Tensor[], vs: Tensor[]) =>
        this.bound([...this.others, ...this.linears], [...w, ...wt.map(t)], () =>
          this.decodeGraph(t(head), ids, pos, valid, ks, vs),
        ),
      { name: 'lm_decode' },
    );
  }

  /** The concrete inputs of a prefill, and the key of the program that runs them. */
  protected abstract plan(x: X): PrefillPlan;

  /** Traced: the prefill's input embeddings [B, P, dim] from its (symbolic) inputs, and the mask over them. */
  protected abstract prefillGraph(key: string, inputs: Tensor[]): { h: Tensor; mask: Mask };

  /** One decode step's graph with the blocks' weights bound: logits [B, range] (head: [out, in] rows), new K/V rows. */
  private decodeGraph(head: Tensor, ids: Tensor, pos: Tensor, valid: Tensor, ks: Tensor[], vs: Tensor[]): Tensor[] {
    const m = this.model,
      L = m.cfg.layers;
    const B = ids.shape[0]!,
      C = valid.shape[1]!;
    const visible = E.reshape(valid, [B, 1, 1, C]);
    const newK: Tensor[] = [],
      newV: Tensor[] = [];
    const h = m.run(m.tokenEmbeddings(ids), {
      positions: pos,
      mask: 'none',
      cache: (l) => ({
        past: { k: ks[l]!, v: vs[l]!, visible },
        keep: (k, v) => {
          newK[l] = k;
          newV[l] = v;
        },
      }),
    });
    return [E.linear(E.reshape(h, [B, m.cfg.dim]), head), ...newK.slice(0, L), ...newV.slice(0, L)];
  }

  /**
   * The int8 decode program of a logit range, over the current weights (rebuilt when one was replaced): the blocks'
   * Linear weights and the head rows are constants of the graph, which the engine quantizes when it compiles.
   */
  private int8Program(range: LogitRange): Int8DecodeFn {
    const key = `${range.lo}:${range.hi}`;
    const weights = [...this.linears.map((p) => p.value), this.model.headWeight.value];
    const held = this.int8Fns.get(key);
    if (held?.weights.every((w, i) => w === weights[i])) return held.fn;
    held?.fn.dispose();
    const linears = weights.slice(0, -1),
      head = this.headRows(range);
    const fn: Int8DecodeFn = E.jit(
      (w: Tensor[], ids: Tensor, pos: Tensor, valid: Tensor, ks: Tensor[], vs: Tensor[]) =>
        this.bound([...this.others, ...this.linears], [...w, ...linears], () =>
          this.decodeGraph(head, ids, pos, valid, ks, vs),
        ),
      { name: 'lm_decode_int8', precision: 'int8', quantize: { conv: false, matmul: 'dynamic' } },
    );
    this.int8Fns.set(key, { weights, fn });
    return fn;
  }

  private bound<T>(params: Param[], w: Tensor[], fn: () => T): T {
    const training = this.model.training;
    this.model.eval();
    try {
      return bindParams(params, w, fn);
    } finally {
      this.model.train(training);
    }
  }

  private checkRange(r: LogitRange): void {
    const V = this.model.cfg.vocabSize!;
    check(
      Number.isInteger(r.lo) && Number.isInteger(r.hi) && 0 <= r.lo && r.lo < r.hi && r.hi <= V,
      `logit range [${r.lo}, ${r.hi}) outside the vocabulary [0, ${V})`,
    );
  }

  private headRows(r: LogitRange): Tensor {
    this.checkRange(r);
    const D = this.model.cfg.dim;
    const w = this.model.headWeight.value;
    if (!w.isConcrete) throw new VtokError('LM decoding needs concrete weights');
    return E.concrete((w.data as Float32Array).subarray(r.lo * D, r.hi * D), [r.hi - r.lo, D], 'float32');
  }

  /** [in, out] copy of an [out, in] weight (rows lo…hi of it), remade only when the weight's buffer changes. */
  private transposed(key: Param | string, w: Tensor, lo = 0, hi = w.shape[0]!): Tensor {
    if (!w.isConcrete) throw new VtokError('LM decoding needs concrete weights');
    const hit = this.transposes.get(key);
    if (hit && hit.source === w.data) return hit.t;
    const src = w.data as Float32Array,
      cols = w.shape[1]!,
      rows = hi - lo;
    const out = new Float32Array(rows * cols);
    const BLK = 64; // cache-sized tiles
    for (let r0 = 0; r0 < rows; r0 += BLK) {
      for (let c0 = 0; c0 < cols; c0 += BLK) {
        for (let r = r0; r < Math.min(r0 + BLK, rows); r++) {
          const base = (lo + r) * cols;
          for (let c = c0; c < Math.min(c0 + BLK, cols); c++) out[c * rows + r] = src[base + c]!;
        }
      }
    }
    const t = E.concrete(out, [cols, rows], 'float32');
    this.transposes.set(key, { source: w.data, t });
    return t;
  }

  /**
   * Runs the start of a sequence, fills a new cache of `capacity` positions and returns the logits over `range` at
   * its last position, [B, hi−lo].
   */
  prefill(x: X, capacity: number, range: LogitRange): Prefilled {
    const c = this.prefillCall(this.plan(x), capacity, range);
    return c.finish(c.run());
  }

  /** `prefill` through the backend's asynchronous run (the browser's); the same programs and results. */
  async prefillAsync(x: X, capacity: number, range: LogitRange): Promise<Prefilled> {
    const c = this.prefillCall(this.plan(x), capacity, range);
    return c.finish(await c.runAsync());
  }

  /** Feeds one token per row at position cache.length; returns the next logits over `range`, [B, hi−lo]. */
  step(cache: KvCacheBuffers, ids: Int32Array, range: LogitRange): Float32Array {
    const c = this.stepCall(cache, ids, range);
    return c.finish(c.run());
  }

  /**
   * `step` through the backend's asynchronous run; the same programs and results. The cache's buffers are the
   * program's inputs until it returns: one call at a time per cache.
   */
  async stepAsync(cache: KvCacheBuffers, ids: Int32Array, range: LogitRange): Promise<Float32Array> {
    const c = this.stepCall(cache, ids, range);
    return c.finish(await c.runAsync());
  }

  /** Positions a prefill of `x` fills. */
  prefillLength(x: X): number {
    return this.plan(x).length;
  }

  private prefillCall(p: PrefillPlan, capacity: number, range: LogitRange): ProgramCall<Prefilled> {
    const m = this.model,
      { batch: B, length: P } = p;
    check(Number.isInteger(P) && P > 0, `prefill: ${P} positions`);
    check(
      capacity >= P && capacity <= m.cfg.maxLength,
      `prefill: cache capacity ${capacity} must be in [${P}, ${m.cfg.maxLength}]`,
    );
    let fn = this.prefillFns.get(p.key);
    if (!fn) {
      const key = p.key;
      fn = E.jit(
        (w: Tensor[], head: Tensor, inputs: Tensor[]) =>
          this.bound(this.params, w, () => {
            const { h: x, mask } = this.prefillGraph(key, inputs);
            const [b, S] = x.shape as [number, number];
            const ks: Tensor[] = [],
              vs: Tensor[] = [];
            const h = m.run(x, {
              positions: E.arange(0, S, 1, 'int64'),
              mask,
              cache: (l) => ({
                keep: (k, v) => {
                  ks[l] = k;
                  vs[l] = v;
                },
              }),
            });
            return [E.linear(E.reshape(E.narrow(h, 1, S - 1, 1), [b, m.cfg.dim]), head), ...ks, ...vs];
          }),
        { name: 'lm_prefill' },
      );
      this.prefillFns.set(key, fn);
    }
    const finish = (out: Tensor[]): Prefilled => {
      const cache = new KvCacheBuffers(B, m.cfg.layers, m.cfg.heads, m.headDim, capacity);
      cache.writeOutputs(out, 0, P);
      for (let b = 0; b < B; b++) {
        if (p.visible) cache.valid.set(p.visible.subarray(b * P, (b + 1) * P), b * capacity);
        else cache.valid.fill(1, b * capacity, b * capacity + P);
      }
      cache.length = P;
      return { cache, logits: out[0]!.data as Float32Array };
    };
    const weights = this.params.map((q) => q.value);
    return { ...programCall(fn, [weights, this.headRows(range), p.inputs]), finish };
  }

  private stepCall(cache: KvCacheBuffers, ids: Int32Array, range: LogitRange): ProgramCall<Float32Array> {
    const m = this.model,
      B = cache.batch,
      C = cache.capacity,
      pos = cache.length;
    check(ids.length === B, `decode step: ${ids.length} ids for a batch of ${B}`);
    if (pos >= C) throw new VtokError(`decode step: the cache of ${C} positions is full`);
    this.checkRange(range);
    const shape = [B, m.cfg.heads, C, m.headDim];
    const kv = (a: Float32Array[]) => a.map((d) => E.concrete(d, shape, 'float32'));
    const head = this.model.headWeight.value;
    const others = this.others.map((p) => p.value),
      idsT = E.concrete(ids, [B, 1], 'int32'),
      posT = E.concrete(BigInt64Array.of(BigInt(pos)), [1], 'int64');
    const validT = E.concrete(cache.valid, [B, C], 'bool');
    const finish = (out: Tensor[]): Float32Array => {
      cache.writeOutputs(out, pos, 1);
      for (let b = 0; b < B; b++) cache.valid[b * C + pos] = 1;
      cache.length = pos + 1;
      return out[0]!.data as Float32Array;
    };
    const call =
      this.precision === 'int8'
        ? programCall(this.int8Program(range), [others, idsT, posT, validT, kv(cache.k), kv(cache.v)])
        : programCall(this.decodeFn, [
            others,
            this.linears.map((p) => (this.copies ? this.transposed(p, p.value) : p.value)),
            this.copies
              ? this.transposed(`head:${range.lo}:${range.hi}`, head, range.lo, range.hi)
              : this.headRows(range),
            idsT,
            posT,
            validT,
            kv(cache.k),
            kv(cache.v),
          ]);
    return { ...call, finish };
  }

  /** Number of compiled programs (prefill variants + decode signatures): stays fixed while decoding. */
  get compiledPrograms(): number {
    let n = this.decodeFn.cacheSize;
    for (const f of this.prefillFns.values()) n += f.cacheSize;
    for (const { fn } of this.int8Fns.values()) n += fn.cacheSize;
    return n;
  }

  dispose(): void {
    this.decodeFn.dispose();
    for (const f of this.prefillFns.values()) f.dispose();
    for (const { fn } of this.int8Fns.values()) fn.dispose();
    this.int8Fns.clear();
  }
}

/** How closely one decoder follows another over a decoded sequence (see `decodeAgreement`). */
export interface DecodeAgreement {
  /** Decode steps compared (rows × steps). */
  compared: number;
  /** Fraction of them where both decoders' largest logit is the same id. */
  top1: number;
  /** Largest |logit difference| over every compared logit. */
  maxAbsLogit: number;
  /** KL(ref ‖ test) of the softmax over the range, in nats: mean and largest over the compared steps. */
  meanKl: number;
  maxKl: number;
}

/**
 * Decodes `steps` tokens with `ref` (each next id chosen by `pick` from ref's logits) and feeds the same ids to
 * `test` (teacher forcing, so the two never drift onto different sequences); compares the logits of every decode step.
 * For measuring what a cheaper decoder (e.g. int8 weights) loses against the float32 one.
 */
export function decodeAgreement<X>(
  ref: LmDecoder<X>,
  test: LmDecoder<X>,
  x: X,
  steps: number,
  range: LogitRange,
  pick: (logits: Float32Array, rows: number, width: number) => Int32Array,
): DecodeAgreement {
  const capacity = ref.prefillLength(x) + steps;
  const a = ref.prefill(x, capacity, range),
    b = test.prefill(x, capacity, range);
  const B = a.cache.batch,
    V = range.hi - range.lo;
  let agree = 0,
    maxAbs = 0,
    klSum = 0,
    klMax = 0,
    compared = 0;
  let next = pick(a.logits, B, V);
  for (let s = 0; s < steps; s++) {
    const la = ref.step(a.cache, next, range),
      lb = test.step(b.cache, next, range);
    for (let r = 0; r < B; r++) {
      const o = r * V;
      let amA = o,
        amB = o,
        mA = -Infinity,
        mB = -Infinity;
      for (let j = o; j < o + V; j++) {
        const p = la[j]!,
          q = lb[j]!;
        maxAbs = Math.max(maxAbs, Math.abs(p - q));
        if (p > mA) {
          mA = p;
          amA = j;
        }
        if (q > mB) {
          mB = q;
          amB = j;
        }
      }
      let zA = 0,
        zB = 0;
      for (let j = o; j < o + V; j++) {
        zA += Math.exp(la[j]! - mA);
        zB += Math.exp(lb[j]! - mB);
      }
      const lzA = mA + Math.log(zA),
        lzB = mB + Math.log(zB);
      let kl = 0;
      for (let j = o; j < o + V; j++) {
        const lp = la[j]! - lzA;
        kl += Math.exp(lp) * (lp - (lb[j]! - lzB));
      }
      if (amA === amB) agree++;
      klSum += kl;
      klMax = Math.max(klMax, kl);
      compared++;
    }
    next = pick(la, B, V);
  }
  return { compared, top1: agree / compared, maxAbsLogit: maxAbs, meanKl: klSum / compared, maxKl: klMax };
}
