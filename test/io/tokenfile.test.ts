import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TokenFileWriter,
  hashConfig,
  openTokenFile,
  packIds,
  readTokenFile,
  unpackIds,
  vocabBits,
  writeTokenFile,
  type TokenFileHeader,
} from '../../src/io/tokenfile.js';

const dir = mkdtempSync(join(tmpdir(), 'vtok-tokenfile-'));
const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/tokenfile');

function header(vocabSize: number, grid: number[]): TokenFileHeader {
  return {
    modality: 'video',
    kind: 'magvit2',
    configHash: hashConfig({ vocabSize, grid }),
    vocabSize,
    grid,
    source: { fps: 8, frameSize: [128, 160] },
    extra: { note: 'test' },
  };
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.floor((s / 2 ** 32) * vocab);
  }
  return out;
}

test('vocabBits is ceil(log2 vocab)', () => {
  assert.equal(vocabBits(2), 1);
  assert.equal(vocabBits(1024), 10);
  assert.equal(vocabBits(1025), 11);
  assert.equal(vocabBits(2 ** 18), 18);
  assert.equal(vocabBits(1000), 10);
});

test('bit packing round-trips at every width and is as small as the bits say', () => {
  for (const bits of [1, 3, 7, 8, 10, 13, 18, 24, 31]) {
    const vocab = 2 ** bits;
    const ids = randomIds(257, vocab, bits);
    ids[0] = vocab - 1; // extremes must survive
    ids[1] = 0;
    const packed = packIds(ids, bits);
    assert.equal(packed.length, Math.ceil((257 * bits) / 8));
    assert.deepEqual(unpackIds(packed, 257, bits), ids);
  }
  // LSB-first: ids 1,2,3 at 2 bits → 0b111001
  assert.deepEqual([...packIds([1, 2, 3], 2)], [0b111001]);
});

test('many clips round-trip losslessly, with per-clip grids and header fields intact', async () => {
  const path = join(dir, 'a.vtok');
  const h = header(2 ** 18, [5, 4, 4]);
  const clips = [
    { grid: [5, 4, 4], ids: randomIds(80, 2 ** 18, 1) },
    { grid: [5, 4, 4], ids: randomIds(80, 2 ** 18, 2) },
    { grid: [2, 4, 4], ids: randomIds(32, 2 ** 18, 3) },
  ];
  assert.equal(writeTokenFile(path, h, clips), 3);
  const back = await readTokenFile(path);
  assert.deepEqual(back.header, h);
  assert.equal(back.clips.length, 3);
  back.clips.forEach((c, i) => {
    assert.deepEqual(c.grid, clips[i]!.grid);
    assert.deepEqual(c.ids, clips[i]!.ids);
  });
  // 18 bits per id: the file is about the packed size, not 4 bytes per id.
  assert.ok(statSync(path).size < 200 + Math.ceil((192 * 18) / 8) + 3 * 30);
});

test('the streaming writer and reader handle clips one at a time', async () => {
  const path = join(dir, 'stream.vtok');
  const w = new TokenFileWriter(path, header(1000, [256]));
  assert.equal(existsSync(path), false, 'target appears only on close');
  for (let i = 0; i < 50; i++) w.writeClip(randomIds(256, 1000, 100 + i));
  assert.equal(w.close(), 50);
  const f = await openTokenFile(path);
  assert.equal(f.header.vocabSize, 1000);
  let n = 0;
  for await (const c of f.clips()) {
    assert.deepEqual(c.ids, randomIds(256, 1000, 100 + n));
    n++;
  }
  assert.equal(n, 50);
  assert.deepEqual(
    readdirSync(dir).filter((x) => x.endsWith('.tmp')),
    [],
    'no temp files left',
  );
});

test('ids outside the vocabulary or the wrong count are rejected and leave no file', () => {
  const path = join(dir, 'bad.vtok');
  assert.throws(() => writeTokenFile(path, header(1000, [4]), [[1, 2, 3, 1000]]), /outside the vocabulary/);
  assert.throws(() => writeTokenFile(path, header(1000, [4]), [[1, 2, 3]]), /has 3 ids/);
  assert.equal(existsSync(path), false);
});

async function readErr(path: string): Promise<string> {
  try {
    await readTokenFile(path);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`${path} read without error`);
}

test('truncated, corrupt, empty and foreign files give clear errors naming the file', async () => {
  const good = join(dir, 'good.vtok');
  writeTokenFile(good, header(4096, [3, 8, 8]), [randomIds(192, 4096, 7), randomIds(192, 4096, 8)]);
  const bytes = readFileSync(good);

  // Cut at every length: each must fail, never return fewer clips silently.
  for (const cut of [0, 3, 10, 40, bytes.length - 300, bytes.length - 12, bytes.length - 1]) {
    const p = join(dir, `cut${cut}.vtok`);
    writeFileSync(p, bytes.subarray(0, cut));
    const msg = await readErr(p);
    assert.ok(msg.startsWith(p), msg);
    assert.match(msg, cut === 0 ? /empty/ : /truncated/);
  }
  // Cut exactly at the clip boundary before the end record.
  const atEnd = join(dir, 'noend.vtok');
  writeFileSync(atEnd, bytes.subarray(0, bytes.length - 12));
  assert.match(await readErr(atEnd), /truncated: ends after 2 clips without the end record/);

  // Flip one bit in the header, in a clip's ids, and in the end record.
  for (const [where, at, re] of [
    ['header', 15, /corrupt header: CRC32 mismatch/], // inside the modality string
    ['ids', bytes.length - 200, /corrupt clip 1: CRC32 mismatch/],
    ['end', bytes.length - 6, /corrupt the end record: CRC32 mismatch/],
  ] as const) {
    const p = join(dir, `flip-${where}.vtok`);
    const b = Buffer.from(bytes);
    b[at]! ^= 0x10;
    writeFileSync(p, b);
    assert.match(await readErr(p), re);
  }

  const junk = join(dir, 'junk.vtok');
  writeFileSync(junk, Buffer.from('\x00\x01garbage bytes that are not a token file'));
  assert.match(await readErr(junk), /not a .vtok token file/);
  assert.match(await readErr(join(dir, 'missing.vtok')), /cannot open token file \(ENOENT\)/);

  const trailing = join(dir, 'trailing.vtok');
  writeFileSync(trailing, Buffer.concat([bytes, Buffer.from([1, 2, 3])]));
  assert.match(await readErr(trailing), /trailing bytes/);
});

test('a version-1 file (video only, fps and frame size in fixed fields) still reads, as video', async () => {
  // written by the version-1 writer: two clips of a 1024-word vocabulary, the second with its own grid
  const path = join(fixtures, 'v1-magvit2.vtok');
  assert.equal(readFileSync(path).readUInt16LE(4), 1);
  const { header: h, clips } = await readTokenFile(path);
  assert.deepEqual(h, {
    modality: 'video',
    kind: 'magvit2',
    configHash: 'abcdef0123456789',
    vocabSize: 1024,
    grid: [2, 3, 4],
    source: { fps: 8, frameSize: [48, 64] },
    extra: { model: 'runs/x' },
  });
  assert.deepEqual(
    clips.map((c) => c.grid),
    [
      [2, 3, 4],
      [1, 3, 4],
    ],
  );
  assert.deepEqual(
    clips[0]!.ids,
    Int32Array.from({ length: 24 }, (_, i) => (i * 37) % 1024),
  );
  assert.deepEqual(
    clips[1]!.ids,
    Int32Array.from({ length: 12 }, (_, i) => 1023 - i),
  );
});

test('version 2 stores the modality and a per-modality source record: audio and LM sequences round-trip', async () => {
  const audio: TokenFileHeader = {
    modality: 'audio',
    kind: 'soundstream',
    configHash: 'c0ffee',
    vocabSize: 1024,
    grid: [4, 50],
    source: { sampleRate: 16000, channels: 1 },
  };
  const a = join(dir, 'audio.vtok');
  writeTokenFile(a, audio, [randomIds(200, 1024, 5)]);
  assert.equal(readFileSync(a).readUInt16LE(4), 2);
  const back = await readTokenFile(a);
  assert.deepEqual(back.header, audio);
  assert.deepEqual(back.clips[0]!.ids, randomIds(200, 1024, 5));

  const lm: TokenFileHeader = {
    modality: 'sequence',
    kind: 'gpt',
    configHash: 'beef',
    vocabSize: 70000,
    grid: [33],
    source: { tasks: ['unconditional'] },
  };
  const l = join(dir, 'lm.vtok');
  writeTokenFile(l, lm, [randomIds(33, 70000, 6)]);
  assert.deepEqual((await readTokenFile(l)).header, lm);
});

test('a header without the source its modality needs, or an unknown modality, is refused', () => {
  const base = header(1000, [4]);
  const p = join(dir, 'refused.vtok');
  assert.throws(
    () => writeTokenFile(p, { ...base, source: { frameSize: [8, 8] } }, []),
    /source\.fps must be a non-negative number for video/,
  );
  assert.throws(
    () => writeTokenFile(p, { ...base, modality: 'image', source: {} }, []),
    /source\.frameSize must be \[height, width\] for image/,
  );
  assert.throws(
    () => writeTokenFile(p, { ...base, modality: 'audio', source: { sampleRate: 0 } }, []),
    /source\.sampleRate must be a positive number for audio/,
  );
  assert.throws(
    () => writeTokenFile(p, { ...base, modality: 'smell' as never }, []),
    /header\.modality must be one of video, image, audio, sequence/,
  );
  assert.equal(existsSync(p), false);
});

test('hashConfig is stable under key order and sensitive to values', () => {
  assert.equal(hashConfig({ a: 1, b: [1, 2] }), hashConfig({ b: [1, 2], a: 1 }));
  assert.notEqual(hashConfig({ a: 1 }), hashConfig({ a: 2 }));
  assert.match(hashConfig({}), /^[0-9a-f]{16}$/);
});
