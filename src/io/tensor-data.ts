import { VtokError, check } from '../util/errors.js';
import { dtypeSize, fmtShape, numelOf, type SafeTensor } from './safetensors.js';

/**
 * Safetensors tensor data to and from typed arrays: float32 from every float dtype (float16 and bfloat16 converted
 * bit-exactly), integers checked to fit, and the reverse conversions that build a tensor for writing.
 */

// Half-precision conversions (bit-exact, round-to-nearest-even)
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 bit pattern → float16 bit pattern, round to nearest even; overflow → ±inf; NaN stays NaN (quiet). */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // re-biased exponent (127 → 15)
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is a float16 subnormal (or zero): value = M · 2^(exp−150), in units of 2^−24 that is M >> (14 − e).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) !== 0)) r++;
    return sign | r; // r may reach 0x400: the smallest normal, which is the correct encoding
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is correct (up to inf)
  return h;
}

/** float16 bit pattern → float32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  let e2 = 113;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e2--;
  }
  return (sign | (e2 << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** float32 bit pattern → bfloat16 bit pattern, round to nearest even; NaN stays NaN (quiet). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float value of a float16 bit pattern. */
export function f16BitsToNumber(h: number): number {
  u32Scratch[0] = f16BitsToF32Bits(h);
  return f32Scratch[0]!;
}

/** The float16 bit pattern nearest to `v` (after rounding v to float32). */
export function numberToF16Bits(v: number): number {
  f32Scratch[0] = v;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

let f16Table: Float32Array | null = null;
function getF16Table(): Float32Array {
  if (!f16Table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    f16Table = new Float32Array(bits.buffer);
  }
  return f16Table;
}

// ---------------------------------------------------------------------------------------------------------------
// Typed views and conversions

/** A copy of the tensor bytes as an aligned ArrayBuffer-backed typed array of the given constructor. */
function typedCopy<T>(
  t: SafeTensor,
  ctor: { new (buf: ArrayBuffer, off: number, len: number): T; BYTES_PER_ELEMENT: number },
): T {
  // Fresh, offset-0 buffer: aligned, and never aliases the file bytes (not `.slice()`: on a Buffer that is a view).
  const copy = new Uint8Array(t.data);
  return new ctor(copy.buffer as ArrayBuffer, 0, copy.length / ctor.BYTES_PER_ELEMENT);
}

function checkDataLength(t: SafeTensor, what: string): void {
  const expected = numelOf(t.shape) * dtypeSize(t.dtype);
  check(
    t.data.length === expected,
    `${what}: ${t.dtype} ${fmtShape(t.shape)} tensor has ${t.data.length} bytes, expected ${expected}`,
  );
}

/** Converts any supported dtype to float32 (I64 values beyond 2^24 lose precision, as in any float32 cast). */
export function toFloat32(t: SafeTensor): Float32Array {
  checkDataLength(t, 'toFloat32');
  switch (t.dtype) {
    case 'F32':
      return typedCopy(t, Float32Array);
    case 'F16': {
      const h = typedCopy(t, Uint16Array);
      const table = getF16Table();
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = table[h[i]!]!;
      return out;
    }
    case 'BF16': {
      const h = typedCopy(t, Uint16Array);
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F64':
      return Float32Array.from(typedCopy(t, Float64Array));
    case 'I64': {
      const v = typedCopy(t, BigInt64Array);
      const out = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = Number(v[i]!);
      return out;
    }
    case 'I32':
      return Float32Array.from(typedCopy(t, Int32Array));
    case 'I16':
      return Float32Array.from(typedCopy(t, Int16Array));
    case 'I8':
      return Float32Array.from(typedCopy(t, Int8Array));
    case 'U8':
      return Float32Array.from(t.data);
    case 'BOOL':
      return Float32Array.from(t.data, (b) => (b !== 0 ? 1 : 0));
  }
}

/** Converts float32 data to an F32, F16 or BF16 tensor (round-to-nearest-even for the half types). */
export function fromFloat32(
  data: Float32Array | readonly number[],
  shape: number[],
  dtype: 'F32' | 'F16' | 'BF16' = 'F32',
): SafeTensor {
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  check(numelOf(shape) === f.length, `fromFloat32: ${f.length} values do not match shape ${fmtShape(shape)}`);
  if (dtype === 'F32') {
    return {
      dtype,
      shape: shape.slice(),
      data: new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength)),
    };
  }
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(f.length);
  if (dtype === 'F16') for (let i = 0; i < f.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  else if (dtype === 'BF16') for (let i = 0; i < f.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  else throw new VtokError(`fromFloat32: unsupported target dtype ${String(dtype)} (expected F32, F16 or BF16)`);
  return { dtype, shape: shape.slice(), data: new Uint8Array(out.buffer) };
}

/** Converts float64 data to an F64 tensor. */
export function fromFloat64(data: Float64Array | readonly number[], shape: number[]): SafeTensor {
  const f = Float64Array.from(data);
  check(numelOf(shape) === f.length, `fromFloat64: ${f.length} values do not match shape ${fmtShape(shape)}`);
  return { dtype: 'F64', shape: shape.slice(), data: new Uint8Array(f.buffer) };
}

/** Integer (or BOOL) tensor → BigInt64Array. */
export function toBigInt64(t: SafeTensor): BigInt64Array {
  checkDataLength(t, 'toBigInt64');
  switch (t.dtype) {
    case 'I64':
      return typedCopy(t, BigInt64Array);
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL': {
      const v = toInt32(t);
      const out = new BigInt64Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = BigInt(v[i]!);
      return out;
    }
    default:
      throw new VtokError(`toBigInt64: expected an integer tensor, got ${t.dtype}`);
  }
}

/**
 * Integer (or BOOL) tensor → Int32Array. I64 values must fit in int32 (range-checked; the error names `name`).
 */
export function toInt32(t: SafeTensor, name = 'tensor'): Int32Array {
  checkDataLength(t, `toInt32(${name})`);
  switch (t.dtype) {
    case 'I64': {
      const v = typedCopy(t, BigInt64Array);
      const out = new Int32Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (x < -2147483648n || x > 2147483647n) {
          throw new VtokError(`${name}: I64 value ${x} at flat index ${i} does not fit in int32`);
        }
        out[i] = Number(x);
      }
      return out;
    }
    case 'I32':
      return typedCopy(t, Int32Array);
    case 'I16':
      return Int32Array.from(typedCopy(t, Int16Array));
    case 'I8':
      return Int32Array.from(typedCopy(t, Int8Array));
    case 'U8':
      return Int32Array.from(t.data);
    case 'BOOL':
      return Int32Array.from(t.data, (b) => (b !== 0 ? 1 : 0));
    default:
      throw new VtokError(`${name}: expected an integer tensor, got ${t.dtype}`);
  }
}

/** Integer tensor → plain numbers (I64 values must be safe integers). */
export function toNumbers(t: SafeTensor, name = 'tensor'): number[] {
  if (t.dtype !== 'I64') return Array.from(toInt32(t, name));
  const v = toBigInt64(t);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = Number(v[i]!);
    check(Number.isSafeInteger(x), `${name}: I64 value ${v[i]} at flat index ${i} is not a safe integer`);
    out[i] = x;
  }
  return out;
}

/** I64 tensor from bigints or integer numbers (numbers must be safe integers). */
export function fromInt64(
  data: BigInt64Array | Int32Array | readonly (number | bigint)[],
  shape: number[],
): SafeTensor {
  check(numelOf(shape) === data.length, `fromInt64: ${data.length} values do not match shape ${fmtShape(shape)}`);
  let out: BigInt64Array;
  if (data instanceof BigInt64Array) out = data.slice();
  else {
    out = new BigInt64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (typeof x === 'bigint') {
        check(x >= -(2n ** 63n) && x < 2n ** 63n, `fromInt64: value ${x} at index ${i} does not fit in int64`);
        out[i] = x;
      } else {
        check(Number.isSafeInteger(x), `fromInt64: value ${x} at index ${i} is not a safe integer`);
        out[i] = BigInt(x);
      }
    }
  }
  return { dtype: 'I64', shape: shape.slice(), data: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
}

/** I32 tensor from int32 values. */
export function fromInt32(data: Int32Array | readonly number[], shape: number[]): SafeTensor {
  check(numelOf(shape) === data.length, `fromInt32: ${data.length} values do not match shape ${fmtShape(shape)}`);
  if (!(data instanceof Int32Array)) {
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      check(
        Number.isInteger(x) && x >= -2147483648 && x <= 2147483647,
        `fromInt32: value ${x} at index ${i} is not an int32`,
      );
    }
  }
  const out = Int32Array.from(data);
  return { dtype: 'I32', shape: shape.slice(), data: new Uint8Array(out.buffer) };
}

/** BOOL tensor (stored as one byte 0/1 per element; any non-zero / truthy input becomes 1). */
export function fromBool(data: Uint8Array | readonly (boolean | number)[], shape: number[]): SafeTensor {
  check(numelOf(shape) === data.length, `fromBool: ${data.length} values do not match shape ${fmtShape(shape)}`);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ? 1 : 0;
  return { dtype: 'BOOL', shape: shape.slice(), data: out };
}

/** U8 tensor from bytes / numbers in [0, 255]. */
export function fromUint8(data: Uint8Array | readonly number[], shape: number[]): SafeTensor {
  check(numelOf(shape) === data.length, `fromUint8: ${data.length} values do not match shape ${fmtShape(shape)}`);
  if (!(data instanceof Uint8Array)) {
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      check(Number.isInteger(x) && x >= 0 && x <= 255, `fromUint8: value ${x} at index ${i} is not in [0, 255]`);
    }
  }
  return { dtype: 'U8', shape: shape.slice(), data: Uint8Array.from(data) };
}
