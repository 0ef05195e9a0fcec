import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync, existsSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SafeTensor, parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import {
  f16BitsToNumber,
  f32BitsToBf16Bits,
  fromBool,
  fromFloat32,
  fromInt32,
  fromInt64,
  fromUint8,
  numberToF16Bits,
  toBigInt64,
  toFloat32,
  toInt32,
  toNumbers,
} from '../../src/io/tensor-data.js';
import {
  openSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  writeSafetensorsStreamed,
} from '../../src/io/safetensors-file.js';
import { VtokError } from '../../src/util/errors.js';

// dist/test/io/safetensors.test.js → repo root is three levels up.
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const goldenDir = resolve(repoRoot, 'test/fixtures/golden');

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** A file with a hand-written header: u64 N, the header string padded to a multiple of 8, then dataLen bytes. */
function rawFile(header: string, dataLen: number, nOverride?: bigint): Uint8Array {
  const json = Buffer.from(header, 'utf8');
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + dataLen);
  new DataView(out.buffer).setBigUint64(0, nOverride ?? BigInt(n), true);
  out.fill(0x20, 8, 8 + n);
  out.set(json, 8);
  for (let i = 0; i < dataLen; i++) out[8 + n + i] = i & 0xff;
  return out;
}

function throwsVtok(fn: () => unknown, re: RegExp, file = 'bad.safetensors'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VtokError, `expected VtokError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(e.message.includes(file), `message should name the file: ${e.message}`);
    return true;
  });
}

function sampleTensors(): Record<string, SafeTensor> {
  return {
    'w.f32': fromFloat32(new Float32Array([1.5, -2.25, 3e-8, 1e30, -0, 7]), [2, 3]),
    'w.f16': fromFloat32(new Float32Array([1, -2, 0.1, 65504, 6e-8, -0]), [3, 2], 'F16'),
    'w.bf16': fromFloat32(new Float32Array([1, -2, 3.140625, 1e38]), [4], 'BF16'),
    'idx.i64': fromInt64([0n, -1n, 2n ** 62n, -(2n ** 63n), 5n], [5]),
    'idx.i32': fromInt32([2147483647, -2147483648, 0, 42], [2, 2]),
    'img.u8': fromUint8([0, 1, 127, 255, 9], [5]),
    'mask.bool': fromBool([true, false, true], [3]),
    scalar: fromFloat32(new Float32Array([3.25]), []),
    'scalar.i64': fromInt64([-7], []),
    empty: fromFloat32(new Float32Array(0), [0, 4]),
    'empty.i64': fromInt64([], [3, 0]),
  };
}

test('round trip of all dtypes, 0-rank and empty tensors, and metadata', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtok-st-'));
  try {
    const tensors = sampleTensors();
    const metadata = { format: 'pt', note: 'héllo "quoted" ✓', config: JSON.stringify({ a: [1, 2] }) };
    const path = join(dir, 'sub', 'a.safetensors');
    writeSafetensors(path, tensors, metadata);
    const back = readSafetensors(path);
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual([...back.tensors.keys()].sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const r = back.tensors.get(name)!;
      assert.equal(r.dtype, t.dtype, name);
      assert.deepEqual(r.shape, t.shape, name);
      assert.deepEqual(Array.from(r.data), Array.from(t.data), name);
    }
    // Values come back through the typed converters.
    assert.deepEqual(
      Array.from(toFloat32(back.tensors.get('w.f32')!)),
      Array.from(new Float32Array([1.5, -2.25, 3e-8, 1e30, -0, 7])),
    );
    assert.deepEqual(Array.from(toFloat32(back.tensors.get('w.f16')!)), [1, -2, 0.0999755859375, 65504, 2 ** -24, -0]);
    assert.deepEqual(Array.from(toFloat32(back.tensors.get('w.bf16')!)), [1, -2, 3.140625, 9.969209968386869e37]);
    assert.deepEqual(Array.from(toBigInt64(back.tensors.get('idx.i64')!)), [0n, -1n, 2n ** 62n, -(2n ** 63n), 5n]);
    assert.deepEqual(Array.from(toInt32(back.tensors.get('idx.i32')!)), [2147483647, -2147483648, 0, 42]);
    assert.deepEqual(Array.from(toInt32(back.tensors.get('img.u8')!)), [0, 1, 127, 255, 9]);
    assert.deepEqual(Array.from(toInt32(back.tensors.get('mask.bool')!)), [1, 0, 1]);
    assert.deepEqual(Array.from(toFloat32(back.tensors.get('scalar')!)), [3.25]);
    assert.deepEqual(toNumbers(back.tensors.get('scalar.i64')!), [-7]);
    assert.equal(toFloat32(back.tensors.get('empty')!).length, 0);
    assert.equal(toBigInt64(back.tensors.get('empty.i64')!).length, 0);

    // Header-only read agrees and reports sizes.
    const h = readSafetensorsHeader(path);
    assert.deepEqual(h.metadata, metadata);
    assert.equal(h.headerSize % 8, 0);
    assert.equal(8 + h.headerSize + h.dataSize, readFileSync(path).length);
    assert.deepEqual(h.tensors.get('idx.i32')!.shape, [2, 2]);
    assert.equal(existsSync(`${path}.tmp`), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reference layout: header padded to 8, tensors by descending alignment then name, naturally aligned', () => {
  const parts = serializeSafetensors(new Map(Object.entries(sampleTensors())));
  const bytes = concat(parts);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  assert.equal(parts[0]!.length, 8 + n);
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const order = Object.entries(header).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1],
  );
  // Non-empty tensors in offset order follow the reference sort.
  const names = order.map(([k]) => k).filter((k) => header[k]!.data_offsets[1] > header[k]!.data_offsets[0]);
  assert.deepEqual(names, [
    'idx.i64',
    'scalar.i64',
    'idx.i32',
    'scalar',
    'w.f32',
    'w.bf16',
    'w.f16',
    'img.u8',
    'mask.bool',
  ]);
  const sizes: Record<string, number> = { I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, U8: 1, BOOL: 1 };
  for (const [k, v] of Object.entries(header)) assert.equal((8 + n + v.data_offsets[0]) % sizes[v.dtype]!, 0, k);
  // Without metadata there is no __metadata__ entry, and the output is deterministic.
  assert.equal('__metadata__' in header, false);
  assert.deepEqual(concat(serializeSafetensors(sampleTensors())), bytes);
});

test('writer rejects inconsistent tensors', () => {
  assert.throws(
    () => serializeSafetensors({ a: { dtype: 'F32', shape: [2, 2], data: new Uint8Array(12) } }),
    /a.*12 bytes, expected 16/,
  );
  assert.throws(
    () => serializeSafetensors({ a: { dtype: 'F99' as never, shape: [1], data: new Uint8Array(4) } }),
    /unknown dtype/,
  );
  assert.throws(() => serializeSafetensors({ __metadata__: fromUint8([1], [1]) }), /__metadata__/);
  assert.throws(() => fromInt32([1.5], [1]), VtokError);
  assert.throws(() => fromFloat32(new Float32Array(3), [2, 2]), /3 values do not match shape \[2, 2\]/);
});

test('golden lfq_openmagvit2.safetensors: names, shapes, metadata and values', () => {
  const path = join(goldenDir, 'lfq_openmagvit2.safetensors');
  const { tensors, metadata } = readSafetensors(path);
  const expected: Record<string, [string, number[]]> = {
    'input.x': ['F32', [2, 10, 3, 4, 4]],
    'output.codebook_entropy': ['F32', []],
    'output.commitment': ['F32', []],
    'output.entropy_aux_loss': ['F32', []],
    'output.indices': ['I64', [96]],
    'output.per_sample_entropy': ['F32', []],
    'output.quantized': ['F32', [2, 10, 3, 4, 4]],
    'output.total_aux_loss': ['F32', []],
    'inter.codebook': ['F32', [1024, 10]],
    'inter.entropy_logits': ['F32', [2, 48, 1, 1024]],
  };
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, [dtype, shape]] of Object.entries(expected)) {
    assert.equal(tensors.get(name)!.dtype, dtype, name);
    assert.deepEqual(tensors.get(name)!.shape, shape, name);
  }
  const config = JSON.parse(metadata.config!) as { LFQ: { dim: number; codebook_size: number } };
  assert.equal(config.LFQ.dim, 10);
  assert.equal(config.LFQ.codebook_size, 1024);
  assert.equal(metadata.case, 'lfq_openmagvit2');

  // Values: the indices are the LSB-first sign bits of input.x, flattened over (b, t, h, w).
  const x = toFloat32(tensors.get('input.x')!);
  const idx = toInt32(tensors.get('output.indices')!, 'output.indices');
  const [B, C, T, H, W] = [2, 10, 3, 4, 4];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          let k = 0;
          for (let c = 0; c < C; c++) if (x[(((b * C + c) * T + t) * H + h) * W + w]! > 0) k |= 1 << c;
          assert.equal(idx[((b * T + t) * H + h) * W + w], k);
        }
  assert.equal(Math.min(...idx), 6);
  assert.equal(Math.max(...idx), 1020);
  const codebook = toFloat32(tensors.get('inter.codebook')!);
  assert.deepEqual(Array.from(codebook.subarray(5 * 10, 6 * 10)), [1, -1, 1, -1, -1, -1, -1, -1, -1, -1]);
  assert.ok(Math.abs(toFloat32(tensors.get('output.commitment')!)[0]! - 0.9843) < 1e-4);

  const h = readSafetensorsHeader(path);
  assert.equal(h.headerSize, 2536);
  assert.equal(8 + h.headerSize + h.dataSize, 445188);
  assert.deepEqual(h.tensors.get('inter.entropy_logits')!.shape, [2, 48, 1, 1024]);
  assert.deepEqual(h.tensors.get('output.indices')!.dataOffsets, [0, 768]);
});

test('the file reader reads each tensor by offset, into its own buffer, equal to the whole-file parse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtok-st-'));
  try {
    const written = join(dir, 'a.safetensors');
    writeSafetensors(written, sampleTensors(), { k: 'v' });
    for (const path of [
      written,
      join(goldenDir, 'lfq_openmagvit2.safetensors'),
      join(goldenDir, 'larp_tokenizer.safetensors'),
    ]) {
      const whole = parseSafetensors(new Uint8Array(readFileSync(path)), path);
      const byOffset = readSafetensors(path);
      assert.deepEqual(byOffset.metadata, whole.metadata);
      assert.deepEqual([...byOffset.tensors.keys()], [...whole.tensors.keys()]);
      for (const [name, t] of whole.tensors) {
        const r = byOffset.tensors.get(name)!;
        assert.equal(r.dtype, t.dtype, name);
        assert.deepEqual(r.shape, t.shape, name);
        assert.deepEqual(r.data, t.data, name);
        // not a view into a buffer holding the whole file
        assert.equal(r.data.buffer.byteLength, r.data.length, name);
      }
    }
    // one tensor at a time, on demand; a file cut short after its header was read is named when a tensor is read
    const f = openSafetensors(written);
    try {
      assert.deepEqual(Array.from(toInt32(f.read('idx.i32'))), [2147483647, -2147483648, 0, 42]);
      throwsVtok(() => f.read('nope'), /no tensor "nope"/, 'a.safetensors');
      truncateSync(written, 8 + f.headerSize + 8);
      throwsVtok(
        () => f.read('w.f32'),
        /truncated: could read only \d+ of 24 bytes of tensor "w.f32"/,
        'a.safetensors',
      );
    } finally {
      f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the streamed writer makes the same file tensor by tensor, and leaves none when a write fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtok-st-'));
  try {
    const tensors = sampleTensors();
    const path = join(dir, 'streamed.safetensors');
    const asked: string[] = [];
    const planned = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
    writeSafetensorsStreamed(
      path,
      planned,
      (t) => {
        asked.push(t.name);
        return tensors[t.name]!.data;
      },
      { metadata: { k: 'v' } },
    );
    assert.deepEqual(new Uint8Array(readFileSync(path)), concat(serializeSafetensors(tensors, { k: 'v' })));
    // each tensor made once, in file order (by alignment, then name)
    assert.deepEqual(
      asked,
      [...readSafetensorsHeader(path).tensors.keys()].sort((a, b) => {
        const at = readSafetensorsHeader(path).tensors;
        return at.get(a)!.dataOffsets[0] - at.get(b)!.dataOffsets[0];
      }),
    );
    const failed = join(dir, 'failed.safetensors');
    const full = (() => {
      throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC', syscall: 'write' });
    }) as unknown as typeof import('node:fs').writeSync;
    throwsVtok(
      () => writeSafetensorsStreamed(failed, planned, (t) => tensors[t.name]!.data, { writeSync: full }),
      /cannot write \(ENOSPC: no space left on device\)/,
      'failed.safetensors',
    );
    throwsVtok(
      () => writeSafetensorsStreamed(failed, planned, () => new Uint8Array(1)),
      /tensor ".*": 1 bytes made, the header says/,
      'failed.safetensors',
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('failed')),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated files are rejected with a message naming the problem', () => {
  const good = concat(serializeSafetensors(sampleTensors(), { k: 'v' }));
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const f = 'cut.safetensors';
  for (const cut of [0, 3, 7])
    throwsVtok(
      () => parseSafetensors(good.subarray(0, cut), f),
      new RegExp(`file has ${cut} bytes, fewer than the 8-byte`),
      f,
    );
  for (const cut of [8, 9, 8 + Math.floor(n / 2), 8 + n - 1]) {
    throwsVtok(
      () => parseSafetensors(good.subarray(0, cut), f),
      new RegExp(`truncated: header says the JSON header is ${n} bytes, file has only ${cut - 8}`),
      f,
    );
  }
  const dataLen = good.length - 8 - n;
  for (const cut of [8 + n, 8 + n + 1, good.length - 1]) {
    throwsVtok(
      () => parseSafetensors(good.subarray(0, cut), f),
      new RegExp(`truncated: header says ${dataLen} bytes of tensor data, file has ${cut - 8 - n}`),
      f,
    );
  }
  // The header-only reader checks the file size too.
  const dir = mkdtempSync(join(tmpdir(), 'vtok-st-'));
  try {
    const path = join(dir, f);
    writeFileSync(path, good.subarray(0, good.length - 3));
    throwsVtok(() => readSafetensorsHeader(path), /truncated: header says \d+ bytes of tensor data/, f);
    writeFileSync(path, good.subarray(0, 20));
    throwsVtok(() => readSafetensorsHeader(path), /truncated: header says the JSON header/, f);
    throwsVtok(() => readSafetensors(join(dir, 'missing.safetensors')), /cannot read/, 'missing.safetensors');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corrupt headers are rejected with a message naming the tensor and what was expected', () => {
  const f = 'bad.safetensors';
  const ok = (a: string) => `{"a":${a}}`;
  const p = (bytes: Uint8Array) => () => parseSafetensors(bytes, f);
  throwsVtok(p(rawFile('{"a": {"dtype": "F32", ', 0)), /header is not valid JSON/);
  throwsVtok(p(rawFile('["a"]', 0)), /does not start with '\{'/);
  throwsVtok(p(rawFile(' {}', 0)), /does not start with '\{'/);
  throwsVtok(p(rawFile(ok('{"dtype":"F33","shape":[1],"data_offsets":[0,4]}'), 4)), /tensor "a": unknown dtype "F33"/);
  throwsVtok(
    p(rawFile(ok('{"dtype":"U32","shape":[1],"data_offsets":[0,4]}'), 4)),
    /tensor "a": dtype U32 is not supported/,
  );
  throwsVtok(
    p(rawFile(ok('{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}'), 4)),
    /tensor "a": shape must be an array of non-negative integers/,
  );
  throwsVtok(p(rawFile(ok('{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}'), 4)), /tensor "a": shape must be/);
  throwsVtok(
    p(rawFile(ok('{"dtype":"F32","shape":[1],"data_offsets":[0]}'), 4)),
    /tensor "a": data_offsets must be \[begin, end\]/,
  );
  throwsVtok(p(rawFile(ok('{"dtype":"F32","shape":[1],"data_offsets":[4,0]}'), 4)), /end < begin/);
  throwsVtok(
    p(rawFile(ok('{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}'), 20)),
    /tensor "a": data_offsets \[0, 20\] span 20 bytes, expected 24 \(6 elements of F32 for shape \[2, 3\]\)/,
  );
  const two = (a: [number, number], b: [number, number], len: number) =>
    rawFile(
      `{"a":{"dtype":"F32","shape":[2],"data_offsets":[${a}]},"b":{"dtype":"F32","shape":[2],"data_offsets":[${b}]}}`,
      len,
    );
  throwsVtok(p(two([0, 8], [4, 12], 12)), /tensor "b": data_offsets \[4, 12\] overlap tensor "a" which ends at 8/);
  throwsVtok(p(two([0, 8], [0, 8], 8)), /overlap tensor "a"/);
  throwsVtok(p(two([0, 8], [12, 20], 20)), /tensor "b": .*hole of 4 bytes at \[8, 12\)/);
  throwsVtok(p(two([4, 12], [12, 20], 20)), /tensor "a": .*hole of 4 bytes at \[0, 4\)/);
  throwsVtok(p(two([0, 8], [8, 16], 20)), /header indexes 16 bytes of tensor data, file has 20 \(4 trailing bytes/);
  assert.equal(parseSafetensors(two([8, 16], [0, 8], 16), f).tensors.size, 2); // order in the header does not matter
  throwsVtok(p(rawFile('{"__metadata__":{"k":1}}', 0)), /__metadata__\["k"\] must be a string, got number/);
  throwsVtok(p(rawFile('{"__metadata__":{"k":{"x":"y"}}}', 0)), /__metadata__\["k"\] must be a string, got object/);
  throwsVtok(p(rawFile('{"__metadata__":"x"}', 0)), /__metadata__ must be an object/);
  throwsVtok(
    p(
      rawFile(
        `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`,
        2,
      ),
    ),
    /duplicate key "a" in the header/,
  );
  throwsVtok(
    p(rawFile(ok('{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}'), 1)),
    /duplicate key "dtype"/,
  );
  // Keys that only look alike after escaping are compared decoded.
  throwsVtok(
    p(
      rawFile(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
          `"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`,
        2,
      ),
    ),
    /duplicate key "a"/,
  );
  // Header size larger than the file, and gigantic header sizes.
  throwsVtok(p(rawFile('{}', 10, 1000n)), /truncated: header says the JSON header is 1000 bytes, file has only 18/);
  throwsVtok(p(rawFile('{}', 10, 100_000_008n)), /header size 100000008 bytes exceeds the maximum of 100000000/);
  throwsVtok(p(rawFile('{}', 10, 2n ** 63n + 5n)), /header size 9223372036854775813 bytes exceeds the maximum/);
  // Invalid UTF-8 in the header.
  const badUtf8 = rawFile('{"\u00e9":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}', 0);
  badUtf8[10] = 0xff;
  throwsVtok(p(badUtf8), /not valid UTF-8/);
  // Valid edge cases: empty header, only metadata, padding.
  assert.equal(parseSafetensors(rawFile('{}', 0), f).tensors.size, 0);
  assert.deepEqual(parseSafetensors(rawFile('{"__metadata__":{"a":"b"}}', 0), f).metadata, { a: 'b' });
});

test('I64 → int32 helpers range-check', () => {
  const t = fromInt64([1n, 2n ** 31n], [2]);
  assert.throws(
    () => toInt32(t, 'output.indices'),
    /output.indices: I64 value 2147483648 at flat index 1 does not fit in int32/,
  );
  assert.deepEqual(Array.from(toInt32(fromInt64([-(2n ** 31n), 2n ** 31n - 1n], [2]))), [-2147483648, 2147483647]);
  assert.throws(() => toNumbers(fromInt64([2n ** 60n], [1])), /not a safe integer/);
  assert.deepEqual(toNumbers(fromInt64([2 ** 40, -3], [2])), [2 ** 40, -3]);
  assert.throws(() => toInt32(fromFloat32(new Float32Array([1]), [1])), /expected an integer tensor, got F32/);
});

test('F16 conversion is bit-exact on known patterns (round to nearest even, subnormals, inf, nan)', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [1023 * 2 ** -24, 0x03ff],
    [2 ** -25, 0x0000],
    [Math.fround(2 ** -25 * (1 + 2 ** -23)), 0x0001],
    [3 * 2 ** -25, 0x0002],
    [5 * 2 ** -25, 0x0002],
    [2047 * 2 ** -25, 0x0400],
    [1e-8, 0x0000],
    [-1e-8, 0x8000],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [2048 + 1, 0x6800],
    [2048 + 3, 0x6802],
  ];
  for (const [v, bits] of cases)
    assert.equal(
      numberToF16Bits(v),
      bits,
      `f16(${v}) = 0x${numberToF16Bits(v).toString(16)}, expected 0x${bits.toString(16)}`,
    );
  const nan = numberToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  // Decoding.
  const dec: [number, number][] = [
    [0x3555, 0.333251953125],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x7bff, 65504],
    [0xc000, -2],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x8001, -(2 ** -24)],
  ];
  for (const [bits, v] of dec) assert.equal(f16BitsToNumber(bits), v);
  assert.ok(Object.is(f16BitsToNumber(0x8000), -0));
  assert.ok(Number.isNaN(f16BitsToNumber(0x7e00)));
  // Every finite half survives half → float → half unchanged, and the tensor path agrees with the scalar path.
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = toFloat32({ dtype: 'F16', shape: [65536], data: new Uint8Array(all.buffer) });
  const back = new Uint16Array(fromFloat32(f, [65536], 'F16').data.buffer);
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0) assert.ok(Number.isNaN(f[i]!));
    else assert.equal(back[i], i);
  }
});

test('BF16 conversion is bit-exact on known patterns', () => {
  const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1
    [0x40490fdb, 0x4049], // pi → 3.140625
    [0x3f808000, 0x3f80], // 1 + 2^-8: tie → even
    [0x3f818000, 0x3f82], // 1 + 3·2^-8: tie → even (up)
    [0x3f808001, 0x3f81], // just above the tie
    [0x7f7fffff, 0x7f80], // FLT_MAX → inf
    [0xff7fffff, 0xff80],
    [0x00000001, 0x0000], // smallest subnormal → 0
    [0x00008000, 0x0000], // subnormal tie → even
    [0x00018000, 0x0002],
    [0x80000000, 0x8000], // -0
    [0x7f800000, 0x7f80],
    [0xff800000, 0xff80], // ±inf
    [0x7fc00000, 0x7fc0],
    [0x7f800001, 0x7fc0],
    [0xffffffff, 0xffff], // NaN stays NaN
  ];
  for (const [x, b] of cases) assert.equal(f32BitsToBf16Bits(x), b, `bf16(0x${x.toString(16)})`);
  const t = fromFloat32(new Float32Array([1, -2.5, 3.140625, 0.1]), [4], 'BF16');
  assert.deepEqual(Array.from(new Uint16Array(t.data.buffer)), [
    0x3f80,
    0xc020,
    0x4049,
    f32BitsToBf16Bits(f32bits(0.1)),
  ]);
  assert.equal(f32BitsToBf16Bits(f32bits(0.1)), 0x3dcd);
  assert.deepEqual(Array.from(toFloat32(t)), [1, -2.5, 3.140625, 0.10009765625]);
});
