import onnxProto from 'onnx-proto';
import { VtokError } from '../util/errors.js';
import { backend, INT8_WEIGHTS, type Int8Weights } from './backends/backend.js';
import { ONNX_DTYPE } from './dtype.js';
import { type HostTensor, type RuntimeOptions, Session } from './runtime.js';

/**
 * Post-training static int8 quantization of a lowered ONNX model (weights baked as initializers), in the QDQ
 * form onnxruntime fuses into its integer kernels:
 *
 *   x ─Q(u8)─DQ─┐
 *   w(int8)─DQ──┼─ Conv ─Q(u8)─DQ─ y          ORT: x ─Q─ QLinearConv ─DQ─ y
 *   b(int32)─DQ─┘
 *
 * Activations are uint8, asymmetric, one scale per tensor from calibration ranges (the float model run on
 * calibration inputs with per-tensor ReduceMin/ReduceMax added as outputs, so nothing big leaves the session);
 * weights are symmetric, one scale per output channel, stored as the CPU's kernels need them (`Int8Weights`:
 * int8 ±127, uint8 with zero point 128, or int7 ±64; the backend picks from the CPU's features); biases are int32
 * at scale x_scale·w_scale.
 * Everything else (normalisations, activations, the quantizer's code decision) stays float32. MatMuls with a
 * constant 2-D weight (or the Transpose of one, as `linear` lowers) are optionally quantized too, to ORT's
 * contrib kernels with a float output and per-column weights in the same format: 'static' quantizes the activation with
 * calibrated parameters and runs com.microsoft MatMulIntegerToFloat; 'dynamic' runs DynamicQuantizeMatMul (the
 * activation's range is taken per call, no calibration).
 */

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.IModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

export type Precision = 'fp32' | 'int8';

export interface Range {
  min: number;
  max: number;
}

/** What a quantizable node looks like to a `keepFloat` filter. */
export interface QuantCandidate {
  /** ONNX op type ('Conv' or 'MatMul'). */
  op: string;
  /** Position among the candidates of its op type, in graph order (0 = first). */
  index: number;
  /** Number of candidates of that op type. */
  count: number;
  /** Weight shape (Conv: out × in/groups × k…; MatMul: K × N as the MatMul reads it). */
  weightShape: number[];
}

export interface QuantizeOptions {
  /** Static QDQ quantization of Conv nodes with constant weights (default true). */
  conv?: boolean;
  /** int8 MatMul with a constant 2-D weight: 'static' (calibrated), 'dynamic', or none (default). */
  matmul?: 'static' | 'dynamic' | false;
  /** Keep these candidate nodes in float32 (e.g. the first or last layer). */
  keepFloat?: (c: QuantCandidate) => boolean;
  /**
   * Convolutions with fewer input channels per group stay float32 (default 16): onnxruntime's int8 convolution
   * is several times slower than its float one on a 1- or 3-channel input.
   */
  minInputChannels?: number;
  /**
   * Run pure data movement (Reshape, Transpose, Slice, Concat, Squeeze, Unsqueeze, Flatten) that follows a
   * quantized output on the uint8 tensor, dequantizing after it (default true): a quarter of the bytes to move.
   */
  sinkDequantize?: boolean;
  /**
   * Activation ranges clip at this percentile of each tensor's values (and at 100 − it below), default 99.99;
   * 100 takes the min and max. Clipping the rare largest values buys a finer step for all the others.
   */
  percentile?: number;
  /**
   * Weight format (default: the backend's choice for this CPU, `backend().int8Kernels()`, which VTOK_INT8_KERNEL
   * overrides under Node).
   */
  weights?: Int8Weights;
  /** Runtime options of the calibration sessions (threads). */
  runtime?: RuntimeOptions;
}

const DEFAULT_PERCENTILE = 99.99;

export interface QuantizeReport {
  /** Conv nodes rewritten to QDQ form. */
  conv: number;
  /** MatMul nodes quantized. */
  matmul: number;
  /** Candidates left in float32 (by keepFloat). */
  keptFloat: number;
  /** The weight format used. */
  weights: Int8Weights;
  /** Calibration ranges per quantized activation tensor. */
  ranges: Record<string, Range>;
}

export class QuantizeError extends VtokError {
  constructor(message: string) {
    super(`quantize: ${message}`);
    this.name = 'QuantizeError';
  }
}

// ---- model helpers ----

const dimsOf = (t: TensorProto): number[] => (t.dims ?? []).map(Number);
const sizeOf = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function floatData(t: TensorProto): Float32Array {
  const n = sizeOf(dimsOf(t));
  if (t.rawData?.length) {
    const r = t.rawData;
    if (r.byteLength !== 4 * n)
      throw new QuantizeError(`initializer ${t.name} has ${r.byteLength} bytes for ${n} floats`);
    return new Float32Array(r.buffer.slice(r.byteOffset, r.byteOffset + r.byteLength));
  }
  if (t.floatData && t.floatData.length === n) return Float32Array.from(t.floatData);
  throw new QuantizeError(`initializer ${t.name} holds no float data`);
}

function initializer(name: string, dataType: number, dims: number[], data: ArrayBufferView): TensorProto {
  return {
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

interface Target {
  node: NodeProto;
  op: 'Conv' | 'MatMul';
  weight: TensorProto;
  /** MatMul: the weight is read through a 2-D Transpose of this initializer. */
  transposed?: boolean;
  bias?: TensorProto;
}

/** The Conv / MatMul nodes whose weights (and bias) are float32 initializers that are not also graph inputs. */
function findCandidates(m: ModelProto, opts: QuantizeOptions): { targets: Target[]; kept: number } {
  const g = m.graph!;
  const inputs = new Set((g.input ?? []).map((i) => i.name));
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const constFloat = (name: string | undefined) => {
    const t = name ? inits.get(name) : undefined;
    return t && !inputs.has(name) && t.dataType === DT.FLOAT ? t : undefined;
  };
  const found: Target[] = [];
  const minIn = opts.minInputChannels ?? 16;
  const producer = new Map<string, NodeProto>();
  for (const n of g.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  for (const node of g.node ?? []) {
    if (node.domain) continue;
    if (node.opType === 'Conv' && opts.conv !== false) {
      const weight = constFloat(node.input?.[1]);
      if (!weight || dimsOf(weight).length < 3 || dimsOf(weight)[1]! < minIn) continue;
      const biasName = node.input?.[2];
      const bias = biasName ? constFloat(biasName) : undefined;
      if (biasName && !bias) continue;
      found.push({ node, op: 'Conv', weight, bias });
    } else if (node.opType === 'MatMul' && opts.matmul) {
      const b = node.input?.[1];
      let weight = constFloat(b);
      let transposed = false;
      const tr = b ? producer.get(b) : undefined;
      if (!weight && tr?.opType === 'Transpose' && !tr.domain) {
        const perm = tr.attribute?.find((a) => a.name === 'perm')?.ints?.map(Number);
        weight = constFloat(tr.input?.[0]);
        transposed = !perm || (perm[0] === 1 && perm[1] === 0);
        if (!transposed) weight = undefined;
      }
      if (!weight || dimsOf(weight).length !== 2) continue;
      found.push({ node, op: 'MatMul', weight, transposed });
    }
  }
  const counts = { Conv: 0, MatMul: 0 };
  for (const t of found) counts[t.op]++;
  const seen = { Conv: 0, MatMul: 0 };
  const targets = found.filter((t) => {
    const shape = dimsOf(t.weight);
    const c: QuantCandidate = {
      op: t.op,
      index: seen[t.op]++,
      count: counts[t.op],
      weightShape: t.transposed ? [shape[1]!, shape[0]!] : shape,
    };
    return !opts.keepFloat?.(c);
  });
  return { targets, kept: found.length - targets.length };
}

// ---- calibration ----

function checkFeeds(m: ModelProto, feeds: HostTensor[][]): void {
  const ins = m.graph?.input ?? [];
  if (!Array.isArray(feeds) || feeds.length === 0)
    throw new QuantizeError('no calibration inputs (give at least one set of model inputs)');
  feeds.forEach((set, k) => {
    if (!Array.isArray(set) || set.length !== ins.length)
      throw new QuantizeError(
        `calibration set ${k} has ${Array.isArray(set) ? set.length : 'no'} inputs, the model takes ${ins.length}`,
      );
    set.forEach((t, i) => {
      const want = ins[i]!.type?.tensorType;
      const dims = (want?.shape?.dim ?? []).map((d) => Number(d.dimValue));
      const label = `calibration set ${k}, input ${i} (${ins[i]!.name})`;
      if (!t?.data || !Array.isArray(t.shape)) throw new QuantizeError(`${label} is not a tensor`);
      if (ONNX_DTYPE[t.dtype] !== want?.elemType)
        throw new QuantizeError(`${label} is ${t.dtype}, the model takes ONNX type ${want?.elemType}`);
      if (t.shape.length !== dims.length || t.shape.some((d, j) => d !== dims[j]))
        throw new QuantizeError(`${label} has shape [${t.shape}], the model takes [${dims}]`);
      if (t.data.length !== sizeOf(dims))
        throw new QuantizeError(`${label} has ${t.data.length} values for shape [${dims}]`);
      if (t.data instanceof Float32Array || t.data instanceof Float64Array) {
        for (let j = 0; j < t.data.length; j++)
          if (!Number.isFinite(t.data[j]))
            throw new QuantizeError(`${label} holds a non-finite value (${t.data[j]}) at ${j}`);
      }
    });
  });
}

/**
 * Per-tensor ranges of `tensors` over the calibration inputs. The model is run once per calibration set with
 * only small outputs added per tensor, so nothing big leaves the session: ReduceMin/ReduceMax (percentile 100),
 * or else the k smallest and largest values (TopK over the flattened tensor, k = ⌈n·(1 − percentile/100)⌉), whose
 * k-th values are the clip points. Min/max ranges are the union over the sets; percentile clip points their
 * mean.
 */
export function calibrate(
  model: Uint8Array,
  tensors: string[],
  feeds: HostTensor[][],
  opts: { percentile?: number; runtime?: RuntimeOptions } = {},
): Map<string, Range> {
  const pct = opts.percentile ?? DEFAULT_PERCENTILE;
  if (!(pct > 50 && pct <= 100)) throw new QuantizeError(`percentile must be in (50, 100], got ${pct}`);
  const m = onnx.ModelProto.decode(model);
  checkFeeds(m, feeds);
  const g = m.graph!;
  const unique = [...new Set(tensors)];
  const known = new Set([...(g.node ?? []).flatMap((n) => n.output ?? []), ...(g.input ?? []).map((i) => i.name!)]);
  for (const t of unique) if (!known.has(t)) throw new QuantizeError(`calibration: the model has no tensor ${t}`);
  const outs: string[] = [];
  const INT = onnx.AttributeProto.AttributeType.INT;
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) =>
    g.node!.push({ opType, input, output: [output], name: output, attribute });
  if (pct === 100) {
    unique.forEach((t, i) => {
      for (const op of ['ReduceMin', 'ReduceMax']) {
        node(op, [t], `__calib_${op}_${i}`, [{ name: 'keepdims', type: INT, i: 0 }]);
        outs.push(`__calib_${op}_${i}`);
      }
    });
  } else {
    g.initializer!.push(
      initializer('__calib_flat', DT.INT64, [1], BigInt64Array.of(-1n)),
      initializer('__calib_frac', DT.FLOAT, [], Float32Array.of(1 - pct / 100)),
      initializer('__calib_one', DT.INT64, [1], BigInt64Array.of(1n)),
    );
    unique.forEach((t, i) => {
      const c = `__calib_${i}`;
      node('Reshape', [t, '__calib_flat'], `${c}_flat`);
      node('Size', [t], `${c}_n`);
      node('Cast', [`${c}_n`], `${c}_nf`, [{ name: 'to', type: INT, i: DT.FLOAT }]);
      node('Mul', [`${c}_nf`, '__calib_frac'], `${c}_kf`);
      node('Ceil', [`${c}_kf`], `${c}_kc`);
      node('Cast', [`${c}_kc`], `${c}_ki`, [{ name: 'to', type: INT, i: DT.INT64 }]);
      node('Reshape', [`${c}_ki`, '__calib_one'], `${c}_k1`);
      node('Max', [`${c}_k1`, '__calib_one'], `${c}_k`);
      for (const largest of [0, 1]) {
        const o = `${c}_top${largest}`;
        g.node!.push({
          opType: 'TopK',
          input: [`${c}_flat`, `${c}_k`],
          output: [o, `${o}_idx`],
          name: o,
          attribute: [
            { name: 'largest', type: INT, i: largest },
            { name: 'sorted', type: INT, i: 1 },
          ],
        });
        outs.push(o);
      }
    });
  }
  g.output = outs.map((o) => ({ name: o, type: { tensorType: { elemType: DT.FLOAT } } }));
  const bytes = onnx.ModelProto.encode(m).finish();
  const session = new Session(
    bytes,
    (g.input ?? []).map((i) => i.name!),
    outs,
    opts.runtime,
  );
  const sums = unique.map(() => ({ min: 0, max: 0 }));
  const ranges = new Map<string, Range>();
  try {
    feeds.forEach((set, k) => {
      const r = session.run(set);
      unique.forEach((t, i) => {
        // TopK values come sorted: the k-th smallest / largest is the last one.
        const [a, b] = [r[2 * i]!.data, r[2 * i + 1]!.data];
        const lo = Number(a[a.length - 1]),
          hi = Number(b[b.length - 1]);
        if (!Number.isFinite(lo) || !Number.isFinite(hi))
          throw new QuantizeError(`calibration: tensor ${t} takes non-finite values (${lo} … ${hi})`);
        if (pct === 100) {
          const prev = ranges.get(t);
          ranges.set(t, prev ? { min: Math.min(prev.min, lo), max: Math.max(prev.max, hi) } : { min: lo, max: hi });
        } else {
          sums[i]!.min += lo;
          sums[i]!.max += hi;
          if (k === feeds.length - 1)
            ranges.set(t, { min: sums[i]!.min / feeds.length, max: sums[i]!.max / feeds.length });
        }
      });
    });
  } finally {
    session.dispose();
  }
  return ranges;
}

// ---- quantization parameters ----

/** uint8 asymmetric scale and zero point for a range widened to contain 0 (so zero padding stays exact). */
export function activationParams(r: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min),
    hi = Math.max(0, r.max);
  const scale = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Largest weight magnitude on the integer grid of each format. */
const WEIGHT_MAX: Record<Int8Weights, number> = { int8: 127, uint8: 127, int7: 64 };

/**
 * Symmetric per-channel (axis `axis` of the weight) quantization in `format`: values in ±127 (int8), ±64 (int7),
 * or ±127 shifted by the zero point 128 (uint8). `minScale` floors each channel's scale.
 */
export function quantizeWeight(
  w: Float32Array,
  dims: number[],
  axis: 0 | 1,
  minScale?: Float32Array,
  format: Int8Weights = 'int8',
): { q: Int8Array | Uint8Array; scale: Float32Array; zeroPoint: number } {
  const channels = dims[axis]!;
  const inner = axis === 0 ? sizeOf(dims.slice(1)) : 1;
  const stride = axis === 0 ? 1 : channels;
  const per = axis === 0 ? inner : dims[0]!;
  const index = (c: number, j: number) => (axis === 0 ? c * inner + j : j * stride + c);
  const qmax = WEIGHT_MAX[format];
  const zeroPoint = format === 'uint8' ? 128 : 0;
  const scale = new Float32Array(channels);
  const q = format === 'uint8' ? new Uint8Array(w.length) : new Int8Array(w.length);
  for (let c = 0; c < channels; c++) {
    let amax = 0;
    for (let j = 0; j < per; j++) amax = Math.max(amax, Math.abs(w[index(c, j)]!));
    let s = amax > 0 ? amax / qmax : 1;
    if (minScale && s < minScale[c]!) s = minScale[c]!;
    scale[c] = s;
    const sf = scale[c]!;
    for (let j = 0; j < per; j++)
      q[index(c, j)] = zeroPoint + Math.max(-qmax, Math.min(qmax, Math.round(w[index(c, j)]! / sf)));
  }
  return { q, scale, zeroPoint };
}

/** The weight and zero-point initializers of a quantized weight (zero points one per channel). */
function weightInits(
  names: { q: string; scale: string; zp: string },
  dims: number[],
  channels: number,
  w: { q: Int8Array | Uint8Array; scale: Float32Array; zeroPoint: number },
): TensorProto[] {
  const type = w.q instanceof Uint8Array ? DT.UINT8 : DT.INT8;
  const zp = w.q instanceof Uint8Array ? new Uint8Array(channels).fill(w.zeroPoint) : new Int8Array(channels);
  return [
    initializer(names.q, type, dims, w.q),
    initializer(names.scale, DT.FLOAT, [channels], w.scale),
    initializer(names.zp, type, [channels], zp),
  ];
}

// ---- rewrite ----

/**
 * Rewrites `model` for int8 inference given calibration ranges of every quantized Conv's input and output
 * (tensor name → range; MatMul needs none). Returns the new model bytes and what was done.
 */
export function quantizeModel(
  model: Uint8Array,
  ranges: Map<string, Range>,
  opts: QuantizeOptions = {},
): { model: Uint8Array; report: QuantizeReport } {
  const m = onnx.ModelProto.decode(model);
  const g = m.graph!;
  const { targets, kept } = findCandidates(m, opts);
  const byNode = new Map(targets.map((t) => [t.node, t]));
  const used = new Set<string>();
  for (const n of g.node ?? []) for (const s of [...(n.input ?? []), ...(n.output ?? [])]) used.add(s);
  for (const t of g.initializer ?? []) used.add(t.name!);
  let counter = 0;
  const fresh = (hint: string) => {
    let n: string;
    do n = `${hint}__q${counter++}`;
    while (used.has(n));
    used.add(n);
    return n;
  };
  const newInits: TensorProto[] = [];
  const quantized = new Map<string, { q: string; scale: string; zp: string; s: number }>();
  const reportRanges: Record<string, Range> = {};
  const nodes: NodeProto[] = [];
  const replacedWeights = new Set<string>();
  const weights = opts.weights ?? backend().int8Kernels().weights;
  if (!INT8_WEIGHTS.includes(weights))
    throw new QuantizeError(`unknown weight format "${weights as string}" (${INT8_WEIGHTS.join(', ')})`);
  const report: QuantizeReport = { conv: 0, matmul: 0, keptFloat: kept, weights, ranges: reportRanges };

  const actParams = (tensor: string) => {
    const r = ranges.get(tensor);
    if (!r) throw new QuantizeError(`no calibration range for tensor ${tensor}`);
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min > r.max)
      throw new QuantizeError(`bad calibration range for ${tensor}: ${r.min} … ${r.max}`);
    reportRanges[tensor] = r;
    const p = activationParams(r);
    const scale = fresh(`${tensor}_scale`),
      zp = fresh(`${tensor}_zp`);
    newInits.push(
      initializer(scale, DT.FLOAT, [], Float32Array.of(p.scale)),
      initializer(zp, DT.UINT8, [], Uint8Array.of(p.zeroPoint)),
    );
    return { scale, zp, s: p.scale };
  };
  const qdq = (op: 'QuantizeLinear' | 'DequantizeLinear', ins: string[], out: string, axis?: number): NodeProto => ({
    opType: op,
    input: ins,
    output: [out],
    name: out,
    attribute: axis === undefined ? [] : [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: axis }],
  });

  /** The quantized form of tensor x (quantized here first if no other node did yet). */
  const quantizedInput = (x: string) => {
    let xq = quantized.get(x);
    if (!xq) {
      const p = actParams(x);
      const qn = fresh(x);
      nodes.push(qdq('QuantizeLinear', [x, p.scale, p.zp], qn));
      xq = { q: qn, ...p };
      quantized.set(x, xq);
    }
    return xq;
  };
  /** A fresh DQ of the quantized form of tensor x, for one consumer. */
  const dequantizedInput = (x: string) => {
    const xq = quantizedInput(x);
    const name = fresh(x);
    nodes.push(qdq('DequantizeLinear', [xq.q, xq.scale, xq.zp], name));
    return { name, q: xq };
  };

  for (const node of g.node ?? []) {
    const t = byNode.get(node);
    if (!t) {
      nodes.push(node);
      continue;
    }
    replacedWeights.add(t.weight.name!);
    if (t.op === 'MatMul') {
      // K × N weight (transposed here when the graph transposed an N × K one), one scale per column.
      let w = floatData(t.weight),
        dims = dimsOf(t.weight);
      if (t.transposed) [w, dims] = [transpose2d(w, dims[0]!, dims[1]!), [dims[1]!, dims[0]!]];
      const wq = fresh(`${t.weight.name}_${weights}`),
        ws = fresh(`${t.weight.name}_scale`),
        wz = fresh(`${t.weight.name}_zp`);
      newInits.push(
        ...weightInits({ q: wq, scale: ws, zp: wz }, dims, dims[1]!, quantizeWeight(w, dims, 1, undefined, weights)),
      );
      if (opts.matmul === 'dynamic') {
        nodes.push({
          opType: 'DynamicQuantizeMatMul',
          domain: 'com.microsoft',
          input: [node.input![0]!, wq, ws, wz],
          output: [...node.output!],
          name: fresh('dqmm'),
        });
      } else {
        // Emitted fused (not as DQ → MatMul for ORT to fuse): ORT would fuse a MatMul + bias Add to a float Gemm first.
        const xq = quantizedInput(node.input![0]!);
        nodes.push({
          opType: 'MatMulIntegerToFloat',
          domain: 'com.microsoft',
          input: [xq.q, wq, xq.scale, ws, xq.zp, wz],
          output: [...node.output!],
          name: fresh('qmm'),
        });
      }
      report.matmul++;
      continue;
    }
    // Conv: input activation (reusing the quantized form of a tensor another quantized node produced or read).
    const { name: xdq, q: xq } = dequantizedInput(node.input![0]!);
    // Weight: int8 per output channel; with a bias, keep every bias within int32 at scale x_scale · w_scale.
    const dims = dimsOf(t.weight);
    const bias = t.bias ? floatData(t.bias) : undefined;
    const minScale = bias ? Float32Array.from(bias, (b) => Math.abs(b) / (xq.s * 2 ** 30)) : undefined;
    const wquant = quantizeWeight(floatData(t.weight), dims, 0, minScale, weights);
    const { scale } = wquant;
    const wq = fresh(`${t.weight.name}_${weights}`),
      ws = fresh(`${t.weight.name}_scale`),
      wz = fresh(`${t.weight.name}_zp`),
      wdq = fresh(t.weight.name!);
    newInits.push(...weightInits({ q: wq, scale: ws, zp: wz }, dims, dims[0]!, wquant));
    nodes.push(qdq('DequantizeLinear', [wq, ws, wz], wdq, 0));
    const convIns = [xdq, wdq];
    if (bias) {
      const bs = Float32Array.from(scale, (s) => Math.fround(xq.s * s));
      const bq = Int32Array.from(bias, (b, c) => Math.round(b / bs[c]!));
      const bqn = fresh(`${t.bias!.name}_int32`),
        bsn = fresh(`${t.bias!.name}_scale`),
        bzn = fresh(`${t.bias!.name}_zp`),
        bdq = fresh(t.bias!.name!);
      newInits.push(
        initializer(bqn, DT.INT32, [dims[0]!], bq),
        initializer(bsn, DT.FLOAT, [dims[0]!], bs),
        initializer(bzn, DT.INT32, [dims[0]!], new Int32Array(dims[0]!)),
      );
      nodes.push(qdq('DequantizeLinear', [bqn, bsn, bzn], bdq, 0));
      convIns.push(bdq);
      replacedWeights.add(t.bias!.name!);
    }
    // Output: Conv → Q → DQ under the original name, so every consumer is unchanged.
    const y = node.output![0]!;
    const yf = fresh(y);
    nodes.push({ ...node, input: convIns, output: [yf] });
    const p = actParams(y);
    const yq = fresh(y);
    nodes.push(qdq('QuantizeLinear', [yf, p.scale, p.zp], yq), qdq('DequantizeLinear', [yq, p.scale, p.zp], y));
    quantized.set(y, { q: yq, ...p });
    report.conv++;
  }
  const graphOutputs = new Set((g.output ?? []).map((o) => o.name!));
  const final = dropDead(
    opts.sinkDequantize === false ? nodes : sinkDequantize(nodes, graphOutputs, fresh),
    graphOutputs,
  );
  // Float weights no other node reads are dropped.
  const stillRead = new Set(final.flatMap((n) => n.input ?? []));
  g.node = final;
  g.initializer = [
    ...(g.initializer ?? []).filter((i) => !replacedWeights.has(i.name!) || stillRead.has(i.name!)),
    ...newInits,
  ];
  return { model: onnx.ModelProto.encode(m).finish(), report };
}

/** Drops nodes none of whose outputs is read (e.g. the Transpose of a weight that was replaced), repeatedly. */
function dropDead(nodes: NodeProto[], graphOutputs: Set<string>): NodeProto[] {
  let list = nodes;
  for (;;) {
    const read = new Set(list.flatMap((n) => n.input ?? []));
    const next = list.filter((n) => (n.output ?? []).some((o) => o && (read.has(o) || graphOutputs.has(o))));
    if (next.length === list.length) return list;
    list = next;
  }
}

const MOVEMENT = new Set(['Reshape', 'Transpose', 'Slice', 'Concat', 'Squeeze', 'Unsqueeze', 'Flatten']);

/**
 * Moves per-tensor DequantizeLinear nodes past the data-movement ops that read them, so that those ops move
 * uint8 instead of float32: DQ(q) → Transpose → y becomes Transpose(q) → DQ → y (same scale and zero point; a
 * Concat only when every input is dequantized with the same parameters). Repeats along chains of such ops. The
 * result is exact: data movement commutes with an elementwise affine map.
 */
function sinkDequantize(nodes: NodeProto[], graphOutputs: Set<string>, fresh: (hint: string) => string): NodeProto[] {
  let list = nodes;
  for (let changed = true; changed; ) {
    changed = false;
    const dqOf = new Map<string, NodeProto>();
    for (const n of list)
      if (n.opType === 'DequantizeLinear' && !n.domain && !n.attribute?.length) dqOf.set(n.output![0]!, n);
    const replace = new Map<NodeProto, NodeProto[]>();
    for (const n of list) {
      if (!MOVEMENT.has(n.opType!) || n.domain) continue;
      const data = n.opType === 'Concat' ? n.input! : [n.input![0]!];
      const dqs = data.map((d) => dqOf.get(d));
      if (dqs.some((d) => !d)) continue;
      const [s0, z0] = [dqs[0]!.input![1], dqs[0]!.input![2]];
      if (dqs.some((d) => d!.input![1] !== s0 || d!.input![2] !== z0)) continue;
      const out = n.output![0]!;
      const q = fresh(out);
      const moved: NodeProto = {
        ...n,
        input: n.opType === 'Concat' ? dqs.map((d) => d!.input![0]!) : [dqs[0]!.input![0]!, ...n.input!.slice(1)],
        output: [q],
      };
      replace.set(n, [moved, { opType: 'DequantizeLinear', input: [q, s0!, z0!], output: [out], name: out }]);
      changed = true;
    }
    if (!changed) break;
    const next = list.flatMap((n) => replace.get(n) ?? [n]);
    // Dequantize nodes nothing reads any more are dropped.
    const read = new Set(next.flatMap((n) => n.input ?? []));
    list = next.filter(
      (n) => n.opType !== 'DequantizeLinear' || read.has(n.output![0]!) || graphOutputs.has(n.output![0]!),
    );
  }
  return list;
}

/** The activation tensors static quantization needs ranges for (Conv inputs and outputs, static MatMul inputs). */
export function calibrationTensors(model: Uint8Array, opts: QuantizeOptions = {}): string[] {
  const m = onnx.ModelProto.decode(model);
  return findCandidates(m, opts).targets.flatMap((t) => {
    if (t.op === 'Conv') return [t.node.input![0]!, t.node.output![0]!];
    return opts.matmul === 'static' ? [t.node.input![0]!] : [];
  });
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** Calibrates `model` on `feeds` (sets of graph inputs, in graph-input order) and rewrites it for int8. */
export function quantizeStatic(
  model: Uint8Array,
  feeds: HostTensor[][],
  opts: QuantizeOptions = {},
): { model: Uint8Array; report: QuantizeReport } {
  const tensors = calibrationTensors(model, opts);
  if (!tensors.length) checkFeeds(onnx.ModelProto.decode(model), feeds);
  const ranges = tensors.length ? calibrate(model, tensors, feeds, opts) : new Map();
  return quantizeModel(model, ranges, opts);
}

/**
 * Node counts by op type of the model onnxruntime actually runs: the session's optimised model, as the backend
 * writes it out. Shows whether the QDQ groups were fused into QLinearConv / integer matmuls.
 */
export function optimizedOpCounts(model: Uint8Array, runtime: RuntimeOptions = {}): Record<string, number> {
  const b = backend();
  if (!b.optimizedModel) throw new QuantizeError(`the ${b.name} backend cannot show its optimised model`);
  const counts: Record<string, number> = {};
  for (const n of onnx.ModelProto.decode(b.optimizedModel(model, runtime)).graph?.node ?? [])
    counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
  return counts;
}
