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
 * Tensor data to and from typed arrays (float16/bfloat16 conversions included) is ./tensor-data.ts.
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

export function fmtShape(shape: readonly unknown[]): string {
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
