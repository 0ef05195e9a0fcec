import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import '../../src/engine/index.js'; // installs the Node backend
import { blockMeans, causalGroups, rdMarkdown, type CodecRdResult } from '../../src/studies/codec-rd/index.js';
import type { Frame } from '../../src/io/frame.js';
import { plotRd } from '../../src/studies/codec-rd/plot.js';

/** The RGB pixels of an 8-bit, filter-free PNG as vtok's encoder writes it. */
function pixels(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const dv = new DataView(png.buffer, png.byteOffset);
  const width = dv.getUint32(16),
    height = dv.getUint32(20);
  const idat: Uint8Array[] = [];
  for (let o = 8; o < png.length; ) {
    const len = dv.getUint32(o),
      type = Buffer.from(png.subarray(o + 4, o + 8)).toString('latin1');
    if (type === 'IDAT') idat.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  return { width, height, rgb };
}

test('RD plot: one coloured curve per series, higher quality drawn higher', () => {
  const red: [number, number, number] = [200, 40, 40],
    blue: [number, number, number] = [40, 90, 200];
  const png = plotRd(
    'psnr',
    [
      {
        name: 'a',
        color: red,
        points: [
          { bpp: 0.01, value: 20 },
          { bpp: 0.1, value: 22 },
        ],
      },
      {
        name: 'b',
        color: blue,
        points: [
          { bpp: 0.02, value: 30 },
          { bpp: 0.2, value: 35 },
        ],
      },
    ],
    { width: 400, height: 300 },
  );
  const { width, height, rgb } = pixels(png);
  assert.deepEqual([width, height], [400, 300]);
  const rows = (c: [number, number, number]) => {
    const ys: number[] = [];
    for (let i = 0; i < width * height; i++)
      if (rgb[3 * i] === c[0] && rgb[3 * i + 1] === c[1] && rgb[3 * i + 2] === c[2] && i % width > 100)
        ys.push(Math.floor(i / width));
    return ys;
  };
  const r = rows(red),
    b = rows(blue);
  assert.ok(r.length > 50 && b.length > 50);
  // series b (30–35 dB) lies above series a (20–22 dB): smaller y on the image, legend rows aside
  assert.ok(Math.max(...b.filter((y) => y > 80)) < Math.min(...r.filter((y) => y > 80)));
});

test('RD table lists every point with its token-model rates', () => {
  const r: CodecRdResult = {
    model: 'm',
    clips: 2,
    frames: 17,
    size: 128,
    msssimScales: 4,
    codecs: ['libx264'],
    points: [
      {
        method: 'vtok',
        setting: '18 bits',
        bpp: 0.05,
        psnr: 20,
        ssim: 0.5,
        msssim: 0.6,
        packedBpp: 0.083,
        bppByModel: { frequency: 0.07, context: 0.05 },
      },
      { method: 'H.264 (x264)', setting: 'crf 30', bpp: 0.08, psnr: 30, ssim: 0.9, msssim: 0.95 },
    ],
    references: [{ name: 'block means', psnr: 23.9, ssim: 0.7, msssim: 0.8 }],
  };
  const md = rdMarkdown(r);
  assert.match(md, /\| vtok \| 18 bits \| 0\.0500 \| 20\.00 \| 0\.5000 \| 0\.6000 \| 0\.0830 \/ 0\.0700 \/ 0\.0500 \|/);
  assert.match(md, /\| H\.264 \(x264\) \| crf 30 \| 0\.0800 \| 30\.00 \|/);
  assert.match(md, /\| block means \| 23\.90 \| 0\.7000 \| 0\.8000 \|/);
});

test(
  'block-mean reference: causal frame groups, block colours ' + 'averaged over each group, flat blocks kept exactly',
  () => {
    assert.deepEqual(causalGroups(9, 4), [[0], [1, 2, 3, 4], [5, 6, 7, 8]]);
    assert.deepEqual(causalGroups(7, 4), [[0], [1, 2, 3, 4], [5, 6]]);
    // 5 frames of 4×4: frame t is flat grey 10·t; one group of 4 after the first frame
    const clip: Frame[] = Array.from({ length: 5 }, (_, t) => ({
      width: 4,
      height: 4,
      data: new Uint8Array(48).fill(10 * t),
    }));
    const out = blockMeans(clip, 2, causalGroups(5, 4));
    assert.equal(out.length, 5);
    assert.ok(out[0]!.data.every((v) => v === 0));
    for (let t = 1; t < 5; t++)
      assert.ok(
        out[t]!.data.every((v) => v === 25),
        `frame ${t}: the mean of 10, 20, 30, 40`,
      );
    // a left/right split keeps its block colours at the blocks' centres' sides and blends between them
    const split: Frame = {
      width: 4,
      height: 4,
      data: new Uint8Array(48).map((_, i) => (Math.floor(i / 3) % 4 < 2 ? 0 : 200)),
    };
    const s = blockMeans([split], 2, [[0]])[0]!;
    const at = (x: number) => s.data[x * 3]!;
    assert.deepEqual([at(0), at(1), at(2), at(3)], [0, 50, 150, 200]);
  },
);
