import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { loadPerceptual, PerceptualLoss } from '../../src/losses/perceptual.js';
import { magvit2Trainer } from '../../src/tokenizers/magvit2/kind.js';
import { tokenizerTask } from '../../src/train/tokenizer-task.js';
import { importOnnx } from '../../src/onnx-import/onnx-import.js';
import { VtokError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { tempDir } from '../io/fixtures.js';
import { vtok } from '../cli/run-vtok.js';

/**
 * The LPIPS-style perceptual loss over an imported ONNX feature network: its value against a plain-JS reference,
 * the file's metadata (layers, weights, input range), gray clips on an RGB network, gradients to the
 * reconstruction, clear errors; and `vtok train --perceptual`: the term trains down, is recorded and resumes.
 */
const rng = new Rng(31);
const randn = (shape: number[], std = 1) =>
  E.concrete(
    rng.normal(
      shape.reduce((a, b) => a * b, 1),
      0,
      std,
    ),
    shape,
    'float32',
  );
const uniform = (shape: number[]) =>
  E.concrete(
    rng.uniform(shape.reduce((a, b) => a * b, 1)).map((u) => 2 * u - 1),
    shape,
    'float32',
  );
const dir = tempDir('perceptual');

const w1 = randn([6, 3, 3, 3], 0.4),
  b1 = randn([6], 0.1),
  w2 = randn([8, 6, 3, 3], 0.3),
  b2 = randn([8], 0.1);
function featureNet(x: Tensor, smooth: boolean): Tensor[] {
  const act = smooth ? E.tanh : E.relu;
  const h1 = act(E.conv(x, w1, b1, { padding: 1 }));
  return [h1, act(E.conv(h1, w2, b2, { stride: 2, padding: 1 }))];
}

/** Exports the feature net (traced with an example batch of 1 at `size`) and adds metadata to the file. */
function exportNet(name: string, size: number, metadata: Record<string, string> = {}, smooth = false): string {
  const path = join(dir, name);
  E.exportOnnx((x) => featureNet(x as Tensor, smooth), [E.zeros([1, 3, size, size])], path, {
    inputNames: ['x'],
    outputNames: ['f1', 'f2'],
  });
  if (Object.keys(metadata).length) {
    const m = onnxProto.onnx.ModelProto.decode(readFileSync(path));
    m.metadataProps = Object.entries(metadata).map(([key, value]) => ({ key, value }));
    writeFileSync(path, onnxProto.onnx.ModelProto.encode(m).finish());
  }
  return path;
}

/** Plain-JS LPIPS baseline over given feature maps [B, C, …]: Σ_l w_l·mean_pos ‖unit(fx) − unit(fy)‖² / Σ w. */
function reference(fx: Tensor[], fy: Tensor[], weights: number[], eps = 1e-6): number {
  let total = 0;
  fx.forEach((f, l) => {
    const [b, c] = f.shape as [number, number],
      pos = f.size / (b * c);
    const a = E.toArray(f),
      y = E.toArray(fy[l]!);
    let sum = 0;
    for (let n = 0; n < b; n++) {
      for (let p = 0; p < pos; p++) {
        let na = 0,
          ny = 0;
        for (let k = 0; k < c; k++) {
          const i = (n * c + k) * pos + p;
          na += a[i]! * a[i]!;
          ny += y[i]! * y[i]!;
        }
        for (let k = 0; k < c; k++) {
          const i = (n * c + k) * pos + p;
          sum += (a[i]! / Math.sqrt(na + eps) - y[i]! / Math.sqrt(ny + eps)) ** 2;
        }
      }
    }
    total += (weights[l]! * sum) / (b * pos);
  });
  return total / weights.reduce((p, q) => p + q, 0);
}

/** N×C×T×H×W → N·T×C×H×W. */
const fold = (v: Tensor) => {
  const [n, c, t, h, w] = v.shape as [number, number, number, number, number];
  return E.reshape(E.transpose(v, [0, 2, 1, 3, 4]), [n * t, c, h, w]);
};

describe('perceptual loss', () => {
  const plain = exportNet('plain.onnx', 8);

  it('equals the LPIPS baseline distance over the network features of video frames (folded into the batch)', () => {
    const { loss: p, sha256 } = loadPerceptual(plain);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    const x = uniform([2, 3, 3, 8, 8]),
      y = uniform([2, 3, 3, 8, 8]);
    const d = E.item(p.loss(x, y));
    const want = reference(featureNet(fold(x), false), featureNet(fold(y), false), [1, 1]);
    assert.ok(Math.abs(d - want) < 1e-5 * Math.max(1, want), `${d} vs ${want}`);
    assert.ok(d > 0.05 && d <= 4);
    assert.ok(Math.abs(E.item(p.loss(x, x))) < 1e-9);
    assert.ok(Math.abs(E.item(p.loss(y, x)) - d) < 1e-6, 'symmetric');
    // compiled (traced) gives the same number
    assert.ok(Math.abs(E.item(E.jit((a: Tensor, b: Tensor) => p.loss(a, b))(x, y) as Tensor) - d) < 1e-5);
  });

  it('repeats gray clips to the RGB channels the network expects', () => {
    const { loss: p } = loadPerceptual(plain);
    const x = uniform([1, 1, 2, 8, 8]),
      y = uniform([1, 1, 2, 8, 8]);
    const rgb = (v: Tensor) => E.concat([v, v, v], 1);
    assert.ok(Math.abs(E.item(p.loss(x, y)) - E.item(p.loss(rgb(x), rgb(y)))) < 1e-6);
    // images (N×C×H×W) work too
    assert.ok(E.item(p.loss(uniform([2, 3, 8, 8]), uniform([2, 3, 8, 8]))) > 0);
  });

  it('reads feature layers, per-layer weights and the input range from the file', () => {
    const x = uniform([2, 3, 1, 8, 8]),
      y = uniform([2, 3, 1, 8, 8]);
    const fx = featureNet(fold(x), false),
      fy = featureNet(fold(y), false);
    const weighted = new PerceptualLoss(
      importOnnx(exportNet('w.onnx', 8, { 'vtok.perceptual.weights': '[1, 3]' }), { anyBatch: true }),
    );
    assert.deepEqual(weighted.weights, [1, 3]);
    assert.ok(Math.abs(E.item(weighted.loss(x, y)) - reference(fx, fy, [1, 3])) < 1e-5);
    const byName = new PerceptualLoss(
      importOnnx(exportNet('wn.onnx', 8, { 'vtok.perceptual.weights': '{"f2": 2}' }), { anyBatch: true }),
    );
    assert.ok(Math.abs(E.item(byName.loss(x, y)) - reference([fx[1]!], [fy[1]!], [1])) < 1e-5);
    const ranged = new PerceptualLoss(
      importOnnx(
        exportNet('r.onnx', 8, { 'vtok.input_range': '0,1', 'vtok.input_mean': '0.5', 'vtok.input_std': '0.25,0.5,1' }),
        { anyBatch: true },
      ),
    );
    const map = (v: Tensor) => E.div(E.sub(E.div(E.add(fold(v), 1), 2), 0.5), E.tensor([0.25, 0.5, 1], [1, 3, 1, 1]));
    const want = reference(featureNet(map(x), false), featureNet(map(y), false), [1, 1]);
    assert.ok(Math.abs(E.item(ranged.loss(x, y)) - want) < 1e-5);
    // options in code win over the file
    assert.deepEqual(new PerceptualLoss(weighted.net, { weights: [2, 0] }).weights, [2, 0]);
  });

  it('passes a finite-difference gradient check with respect to the reconstruction', () => {
    const { loss: p } = loadPerceptual(exportNet('smooth.onnx', 8, {}, true));
    const x = uniform([1, 3, 2, 8, 8]),
      y = uniform([1, 3, 2, 8, 8]);
    const r = E.gradcheck((a, b) => p.loss(a, b), [x, y], { wrt: [1], eps: 1e-2, directions: 4 });
    assert.ok(r.maxError < 1e-2, JSON.stringify(r.checks));
    assert.ok(
      r.checks.some((c) => Math.abs(c.analytic) > 1e-3),
      'the gradient is not zero',
    );
  });

  it('explains what does not fit: frame size, channels, metadata, inputs', () => {
    const { loss: p } = loadPerceptual(plain);
    assert.throws(
      () => p.loss(uniform([1, 3, 1, 16, 16]), uniform([1, 3, 1, 16, 16])),
      /plain\.onnx: the feature network expects 8×8 frames, these are 16×16/,
    );
    assert.throws(
      () => p.loss(uniform([1, 2, 1, 8, 8]), uniform([1, 2, 1, 8, 8])),
      /expects 3 channels; 2-channel frames/,
    );
    assert.throws(
      () => loadPerceptual(exportNet('bad-w.onnx', 8, { 'vtok.perceptual.weights': '[1]' })),
      /per-layer weights must be 2 non-negative numbers/,
    );
    assert.throws(
      () => loadPerceptual(exportNet('bad-l.onnx', 8, { 'vtok.perceptual.layers': '["nope"]' })),
      /feature layer "nope" is not a value of the network/,
    );
    assert.throws(
      () => loadPerceptual(exportNet('bad-r.onnx', 8, { 'vtok.input_range': '1,0' })),
      /input range must be "lo,hi" with lo < hi/,
    );
    const two = join(dir, 'two.onnx');
    E.exportOnnx((a, b) => E.add(a as Tensor, b as Tensor), [E.zeros([1, 3, 8, 8]), E.zeros([1, 3, 8, 8])], two);
    assert.throws(
      () => loadPerceptual(two),
      (e: Error) => e instanceof VtokError && /takes one image input, this one takes 2/.test(e.message),
    );
  });

  it('adds a perceptual term to the MAGVIT-v2 generator step of the tokenizer task', () => {
    E.seed(3);
    const preset = {
      ...magvit2Trainer.presets.micro!,
      size: 8,
      frames: 1,
      model: { ch: 32, ch_mult: [1], num_res_blocks: 1, bits: 4 },
    };
    const config = magvit2Trainer.modelConfig(preset, { size: 8, frames: 1, channels: 3 });
    const model = magvit2Trainer.build(config, 10);
    const { loss: p } = loadPerceptual(plain);
    const video = uniform([2, 3, 1, 8, 8]);
    const held = { data: video.data as Float32Array, shape: [...video.shape] } as never;
    const task = tokenizerTask(
      model,
      { lr: 1e-3, steps: 10, perceptual: { weight: 0.5, distance: (v, r) => p.loss(v, r) } },
      held,
    );
    const m = task.iterate(held, 0);
    assert.ok(Number.isFinite(m.perceptual) && m.perceptual! > 0, JSON.stringify(m));
    // loss = recon + 0.1·entropy + 0.25·commitment + 0.5·perceptual
    const want = m.recon! + 0.1 * m.entropy! + 0.25 * m.commit! + 0.5 * m.perceptual!;
    assert.ok(Math.abs(m.loss! - want) < 1e-4, `${m.loss} vs ${want}`);
  });
});

describe('vtok train --perceptual', () => {
  it('trains the perceptual term down, records it in the run config and resumes with it', async () => {
    const net = exportNet('net32.onnx', 32);
    const run = join(dir, 'run');
    const common = [
      'train',
      'larp',
      '--data',
      'moving-mnist',
      '--preset',
      'tiny',
      '--batch',
      '2',
      '--out',
      run,
      '--quiet',
    ];
    const r = await vtok(
      ...common,
      '--steps',
      '30',
      '--eval-every',
      '30',
      '--perceptual',
      net,
      '--perceptual-weight',
      '1',
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = () =>
      readFileSync(join(run, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((l) => l.perceptual !== undefined);
    const first = lines();
    assert.deepEqual(
      first.map((l) => l.step),
      [10, 20, 30],
    );
    assert.ok(first[2].perceptual < first[0].perceptual * 0.95, `perceptual ${first.map((l) => l.perceptual)}`);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    assert.deepEqual(Object.keys(config.train.perceptual), ['model', 'weight', 'sha256']);
    assert.equal(config.train.perceptual.weight, 1);
    assert.equal(config.train.perceptual.model, net);

    // a different network for the same run is refused; the weight alone is meaningless
    const other = exportNet('other32.onnx', 32, { 'vtok.perceptual.weights': '[1, 2]' });
    const bad = await vtok(...common, '--steps', '40', '--perceptual', other);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /trained with a different perceptual network/);
    const lone = await vtok('train', 'larp', '--out', join(dir, 'run2'), '--perceptual-weight', '0.5');
    assert.notEqual(lone.code, 0);
    assert.match(lone.stderr, /--perceptual-weight needs --perceptual/);

    // the same command without the flag resumes with the recorded network and weight
    const r2 = await vtok(...common, '--steps', '40', '--eval-every', '40');
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /resuming with the run's perceptual loss/);
    const after = lines();
    assert.equal(after[after.length - 1].step, 40);
    assert.equal(
      JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).train.perceptual.sha256,
      config.train.perceptual.sha256,
    );
  });
});
