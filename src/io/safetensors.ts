/**
 * Safetensors parser and serialiser (huggingface/safetensors format), on bytes only: no file access, so a browser
 * build parses weights it fetched. Files on disk (header first, then each tensor by offset; atomic writes) are
 * ./safetensors-file.ts.
 *
 * Layout: 8-byte little-endian u64 header size N, N bytes of UTF-8 JSON header (starts with '{', may be padded
 * with spaces), then the tensor byte buffer. Every header entry is `{"dtype", "shape", "data_offsets": [begin, end]}`
 * with offsets relative to the buffer; the entries must cover the buffer exactly, without holes or overlaps.
 * An optional `__metadata__` entry is a string → string map.
 *
 * Everything a file can get wrong is reported as a VtokError naming the file, the tensor and what was expected.
 */
import { VtokError, check } from '../util/errors.js';

export type SafeDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor: dtype, row-major shape and its raw little-endian bytes. */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Uint8Array;
}

/** A header entry without its data. */
export interface SafeTensorInfo {
  dtype: SafeDType;
  shape: number[];
  /** [begin, end) relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, SafeTensorInfo>;
  metadata: Record<string, string>;
  /** N: the JSON header length in bytes (without the 8-byte length prefix). */
  headerSize: number;
  /** Byte length of the tensor data buffer (= file size − 8 − N). */
  dataSize: number;
}

/** Reference implementation limit on the JSON header size. */
export const MAX_HEADER_SIZE = 100_000_000;

const DTYPE_SIZES: Record<SafeDType, number> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Other dtypes of the format that this reader does not support (named in the error so users know why). */
const OTHER_FORMAT_DTYPES = new Set([
  'U16',
  'U32',
  'U64',
  'C64',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
]);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN)
  throw new VtokError('vtok needs a little-endian host (typed arrays are used as little-endian views)');

export function isSafeDType(s: unknown): s is SafeDType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_SIZES, s);
}

/** Number of elements of a shape (1 for the 0-rank shape []). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * The JSON header's length N, read from the u64 LE prefix at the start of `bytes` (a file of `fileLength` bytes
 * starts with them; fewer than 8 is a truncated file) and checked against the file's length.
 */
export function headerSizeOf(bytes: Uint8Array, fileLength: number, file?: string): number {
  check(
    fileLength >= 8,
    `truncated: file has ${fileLength} bytes, fewer than the 8-byte header length prefix of a safetensors file`,
    file,
  );
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // exact below 2^53, and anything ≥ 2^32 is rejected below anyway
  const shown = hi === 0 ? String(n) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
  check(
    n <= MAX_HEADER_SIZE,
    `header size ${shown} bytes exceeds the maximum of ` +
      `${MAX_HEADER_SIZE} bytes (corrupt length prefix or not a safetensors file)`,
    file,
  );
  check(
    n <= fileLength - 8,
    `truncated: header says the JSON header is ${shown} bytes, ` +
      `file has only ${fileLength - 8} bytes after the length prefix`,
    file,
  );
  check(n >= 2, `header size ${n} is too small to hold a JSON object`, file);
  return n;
}

/**
 * Checks that no JSON object in `text` (already known to be valid JSON) has a duplicate key: JSON.parse would
 * silently keep the last one, the format forbids them.
 */
function checkNoDuplicateKeys(text: string, file?: string): void {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const where = stack.length === 1 ? 'the header' : 'a header entry';
        check(!top.keys.has(key), `duplicate key ${JSON.stringify(key)} in ${where}`, file);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ keys: null, expectKey: false });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Parses and validates the JSON header (the N bytes after the prefix) against a data buffer of `dataSize` bytes. */
export function parseHeaderJson(
  headerBytes: Uint8Array,
  dataSize: number,
  file?: string,
): { tensors: Map<string, SafeTensorInfo>; metadata: Record<string, string> } {
  check(
    headerBytes.length > 0 && headerBytes[0] === 0x7b,
    `header does not start with '{' (not a safetensors file?)`,
    file,
  );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new VtokError('header is not valid UTF-8', file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new VtokError(`header is not valid JSON: ${(e as Error).message}`, file);
  }
  check(typeof json === 'object' && json !== null && !Array.isArray(json), 'header JSON is not an object', file);
  checkNoDuplicateKeys(text, file);

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensorInfo>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      check(
        typeof raw === 'object' && raw !== null && !Array.isArray(raw),
        '__metadata__ must be an object mapping strings to strings',
        file,
      );
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        check(
          typeof v === 'string',
          () =>
            `__metadata__[${JSON.stringify(k)}] must be a string, ` +
            `got ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`,
          file,
        );
        metadata[k] = v;
      }
      continue;
    }
    const t = `tensor ${JSON.stringify(name)}`;
    check(
      typeof raw === 'object' && raw !== null && !Array.isArray(raw),
      `${t}: entry must be an object with dtype, shape, data_offsets`,
      file,
    );
    const e = raw as Record<string, unknown>;
    const dtype = e.dtype;
    if (!isSafeDType(dtype)) {
      const supported = Object.keys(DTYPE_SIZES).join(', ');
      if (typeof dtype === 'string' && OTHER_FORMAT_DTYPES.has(dtype)) {
        throw new VtokError(`${t}: dtype ${dtype} is not supported (supported: ${supported})`, file);
      }
      throw new VtokError(`${t}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${supported})`, file);
    }
    const shape = e.shape;
    check(
      Array.isArray(shape) && shape.every(isNonNegInt),
      () => `${t}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
      file,
    );
    const offs = e.data_offsets;
    check(
      Array.isArray(offs) && offs.length === 2 && offs.every(isNonNegInt),
      () => `${t}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offs)}`,
      file,
    );
    const [begin, end] = offs as [number, number];
    check(end >= begin, `${t}: data_offsets [${begin}, ${end}] has end < begin`, file);
    const numel = numelOf(shape as number[]);
    const nbytes = numel * DTYPE_SIZES[dtype];
    check(Number.isSafeInteger(nbytes), `${t}: shape ${fmtShape(shape as number[])} is too large`, file);
    check(
      end - begin === nbytes,
      `${t}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, expected ${nbytes} ` +
        `(${numel} elements of ${dtype} for shape ${fmtShape(shape as number[])})`,
      file,
    );
    tensors.set(name, { dtype, shape: (shape as number[]).slice(), dataOffsets: [begin, end] });
  }

  // The entries sorted by offset must tile [0, dataSize) exactly.
  const order = [...tensors.entries()].sort(
    (a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1],
  );
  let pos = 0;
  let prevName: string | null = null;
  for (const [name, info] of order) {
    const [begin, end] = info.dataOffsets;
    const t = `tensor ${JSON.stringify(name)}`;
    if (begin < pos) {
      throw new VtokError(
        `${t}: data_offsets [${begin}, ${end}] overlap tensor ${JSON.stringify(prevName)} which ends at ${pos}`,
        file,
      );
    }
    if (begin > pos) {
      throw new VtokError(
        `${t}: data_offsets [${begin}, ${end}] leave a hole of ${begin - pos} bytes at [${pos}, ${begin}) ` +
          `(expected begin = ${pos}; the data buffer must be covered without holes)`,
        file,
      );
    }
    pos = end;
    prevName = name;
  }
  if (pos > dataSize) {
    throw new VtokError(`truncated: header says ${pos} bytes of tensor data, file has ${dataSize}`, file);
  }
  if (pos < dataSize) {
    throw new VtokError(
      `header indexes ${pos} bytes of tensor data, file has ` +
        `${dataSize} (${dataSize - pos} trailing bytes not covered by any tensor)`,
      file,
    );
  }
  return { tensors, metadata };
}

/** Parses a whole safetensors file held in memory. Tensor `data` are views into `bytes` (not copies). */
export function parseSafetensors(
  bytes: Uint8Array,
  file?: string,
): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const n = headerSizeOf(bytes, bytes.length, file);
  const dataStart = 8 + n;
  const { tensors: infos, metadata } = parseHeaderJson(bytes.subarray(8, dataStart), bytes.length - dataStart, file);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, info] of infos) {
    const [begin, end] = info.dataOffsets;
    tensors.set(name, {
      dtype: info.dtype,
      shape: info.shape,
      data: bytes.subarray(dataStart + begin, dataStart + end),
    });
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const utf8 = new TextEncoder();

/** Byte order of the UTF-8 encodings (the reference sorts names as Rust strings, i.e. by bytes). */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a),
    y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Validates one tensor before writing it. */
function checkTensor(name: string, t: SafeTensor): void {
  const n = `tensor ${JSON.stringify(name)}`;
  check(name !== '__metadata__', `"__metadata__" cannot be used as a tensor name`);
  check(isSafeDType(t.dtype), `${n}: unknown dtype ${JSON.stringify(t.dtype)}`);
  check(
    Array.isArray(t.shape) && t.shape.every(isNonNegInt),
    () => `${n}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`,
  );
  check(t.data instanceof Uint8Array, `${n}: data must be a Uint8Array of raw little-endian bytes`);
  const expected = numelOf(t.shape) * DTYPE_SIZES[t.dtype];
  check(
    t.data.length === expected,
    `${n}: data has ${t.data.length} bytes, expected ${expected} for ${t.dtype} ${fmtShape(t.shape)}`,
  );
}

/**
 * Serializes tensors to safetensors bytes, returned as parts (header incl. the length prefix, then each tensor's
 * data) to avoid one big copy. Layout as safetensorsLayout.
 */
export function serializeSafetensors(
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) checkTensor(name, t);
  const byName = new Map(entries);
  const { head, order } = safetensorsLayout(
    entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  const parts: Uint8Array[] = [head];
  for (const name of order) {
    const t = byName.get(name)!;
    if (t.data.length > 0) parts.push(t.data);
  }
  return parts;
}

/**
 * A file's header (length prefix + JSON) for tensors of known dtype and shape, and the order their data follows it
 * in: the reference layout, tensors sorted by descending dtype alignment, then name; the header padded with spaces
 * to a multiple of 8 so every tensor is naturally aligned in the file. A writer can put the header first and then
 * stream each tensor's bytes in `order` (safetensors-file.ts writeSafetensorsStreamed).
 */
export function safetensorsLayout(
  tensors: readonly { name: string; dtype: SafeDType; shape: readonly number[] }[],
  metadata?: Record<string, string>,
): { head: Uint8Array; order: string[]; dataSize: number } {
  const seen = new Set<string>();
  for (const t of tensors) {
    const n = `tensor ${JSON.stringify(t.name)}`;
    check(t.name !== '__metadata__', `"__metadata__" cannot be used as a tensor name`);
    check(!seen.has(t.name), `${n} is given twice`);
    seen.add(t.name);
    check(isSafeDType(t.dtype), `${n}: unknown dtype ${JSON.stringify(t.dtype)}`);
    check(
      Array.isArray(t.shape) && t.shape.every(isNonNegInt),
      () => `${n}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`,
    );
  }
  const sorted = [...tensors].sort(
    (a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype] || compareUtf8(a.name, b.name),
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const md: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      check(typeof v === 'string', `metadata ${JSON.stringify(k)} must be a string, got ${typeof v}`);
      md[k] = v;
    }
    header.__metadata__ = md;
  }
  let pos = 0;
  for (const t of sorted) {
    const nbytes = numelOf(t.shape) * DTYPE_SIZES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + nbytes] };
    pos += nbytes;
  }
  const json = utf8.encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  check(n <= MAX_HEADER_SIZE, `header of ${n} bytes exceeds the maximum of ${MAX_HEADER_SIZE} bytes`);
  const head = new Uint8Array(8 + n).fill(0x20);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  head.set(json, 8);
  return { head, order: sorted.map((t) => t.name), dataSize: pos };
}

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: SafeDType): number {
  return DTYPE_SIZES[dtype];
}

// ---------------------------------------------------------------------------------------------------------------
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
  const expected = numelOf(t.shape) * DTYPE_SIZES[t.dtype];
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
