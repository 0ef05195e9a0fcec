import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { I3dNet, LpipsNet, fvd } from '../../src/metrics/external.js';
import type { ClipTensor } from '../../src/io/frame.js';
import { tempDir } from '../io/fixtures.js';

const { onnx } = onnxProto;
const dir = tempDir('external');

/** Writes a tiny ONNX graph standing in for a user-supplied network, so the loading and plumbing are real. */
function writeModel(path: string, inputs: [string, (number | string)[]][], output: [string, (number | string)[]], nodes: object[]): string {
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'g', input: inputs.map(([n, d]) => vi(n, d)), output: [vi(...output)], node: nodes },
  });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return path;
}
const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
const int = (name: string, v: number) => ({ name, type: 2, i: v });

test('LPIPS from a user-supplied ONNX file: per-pair distances and clip means', async () => {
  // Stand-in "LPIPS": mean squared difference per pair.
  const p = writeModel(join(dir, 'lpips.onnx'), [['in0', ['N', 3, 'H', 'W']], ['in1', ['N', 3, 'H', 'W']]], ['d', ['N']], [
    { opType: 'Sub', input: ['in0', 'in1'], output: ['s'] },
    { opType: 'Mul', input: ['s', 's'], output: ['q'] },
    { opType: 'ReduceMean', input: ['q'], output: ['d'], attribute: [ints('axes', [1, 2, 3]), int('keepdims', 0)] },
  ]);
  const net = await LpipsNet.load(p);
  const a = new Float32Array(2 * 3 * 2 * 2);
  const b = a.map((_, i) => (i < 12 ? 0 : 0.5));
  assert.deepEqual([...(await net.distance(a, b, [2, 3, 2, 2]))], [0, 0.25]);
  // Clips N=1, T=2: frame 0 equal, frame 1 off by 1 everywhere → mean (0 + 1) / 2.
  const T = 2, H = 2, W = 2;
  const ca: ClipTensor = { data: new Float32Array(3 * T * H * W), shape: [1, 3, T, H, W] };
  const cb: ClipTensor = { data: ca.data.map((_, i) => (Math.floor(i / (H * W)) % T === 1 ? 1 : 0)), shape: [1, 3, T, H, W] };
  assert.equal(await net.clipDistance(ca, cb), 0.5);
});

test('FVD from a user-supplied I3D ONNX file: identical sets → 0, shifted set → squared shift per feature', async () => {
  // Stand-in "I3D": per-channel, per-frame means → N×(3·T) features.
  const p = writeModel(join(dir, 'i3d.onnx'), [['video', ['N', 3, 4, 8, 8]]], ['f', ['N', 12]], [
    { opType: 'ReduceMean', input: ['video'], output: ['m'], attribute: [ints('axes', [3, 4]), int('keepdims', 0)] },
    { opType: 'Flatten', input: ['m'], output: ['f'], attribute: [int('axis', 1)] },
  ]);
  const net = await I3dNet.load(p);
  assert.deepEqual(net.inputShape, [undefined, 3, 4, 8, 8]);
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const batch = (): ClipTensor => ({ data: Float32Array.from({ length: 8 * 3 * 4 * 64 }, rnd), shape: [8, 3, 4, 8, 8] });
  const real = [batch(), batch(), batch(), batch()];
  const shifted = real.map((b) => ({ ...b, data: b.data.map((v) => v + 0.1) }));
  assert.ok((await fvd(net, real, real)) < 1e-9);
  const d = await fvd(net, real, shifted);
  assert.ok(Math.abs(d - 12 * 0.01) < 1e-5, `fvd ${d}`);
  await assert.rejects(net.features({ data: new Float32Array(3 * 4 * 16 * 16), shape: [1, 3, 4, 16, 16] }), /expects input shape \[\?, 3, 4, 8, 8\]/);
});

test('missing or bad network files say what to supply', async () => {
  const saved = process.env.VTOK_LPIPS_ONNX;
  delete process.env.VTOK_LPIPS_ONNX;
  await assert.rejects(LpipsNet.load(), /LPIPS needs a pretrained network.*--lpips-onnx/);
  process.env.VTOK_LPIPS_ONNX = saved;
  await assert.rejects(I3dNet.load(join(dir, 'nope.onnx')), (e: Error) => e.message.includes('nope.onnx: no such file') && /I3D/.test(e.message));
  const junk = join(dir, 'junk.onnx');
  writeFileSync(junk, 'not a model');
  await assert.rejects(LpipsNet.load(junk), /junk.onnx: not an ONNX model onnxruntime can load/);
});
