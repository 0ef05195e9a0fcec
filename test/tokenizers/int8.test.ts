import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import type { Batch } from '../../src/data/dataset.js';
import { createLoader } from '../../src/data/loader.js';
import { namedDataset } from '../../src/data/named.js';
import * as E from '../../src/engine/index.js';
import { INT8_WEIGHTS, type Tensor } from '../../src/engine/index.js';
import type { CompiledFn } from '../../src/nn/compiled.js';
import { readAllFrames } from '../../src/io/video.js';
import { psnrFrames, relativeRmsError } from '../../src/metrics/psnr.js';
import { evaluateReconstruction } from '../../src/tokenizers/reconstruction.js';
import { LarpTokenizer } from '../../src/tokenizers/larp/tokenizer.js';
import { Magvit2Tokenizer } from '../../src/tokenizers/magvit2/tokenizer.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { setTokenizerPrecision, type Tokenizer } from '../../src/tokenizers/tokenizer.js';
import { Rng } from '../../src/util/rng.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';

/** int8 inference of the tokenizers: accuracy of the shipped MAGVIT-v2 against fp32, LARP, errors, the CLI flag. */

const MODEL = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function clips(split: 'train' | 'test', n: number): Promise<Batch> {
  const loader = await createLoader(namedDataset('moving-mnist', split, 64, 5, 0, 1), {
    batchSize: n,
    shuffle: false,
    worker: false,
  });
  try {
    for await (const b of loader) return b;
  } finally {
    await loader.close();
  }
  throw new Error('no clips');
}

/** Whether the quantized model stores its weights in `format` (initializers named by quantizeModel). */
const storesWeights = (model: Uint8Array, format: string) => {
  const names = onnxProto.onnx.ModelProto.decode(model).graph!.initializer!.map((t) => t.name!);
  return (
    names.some((n) => n.includes(`_${format}__q`)) &&
    !INT8_WEIGHTS.some((f) => f !== format && names.some((n) => n.includes(`_${f}__q`)))
  );
};

const agreement = (a: Tensor, b: Tensor) => {
  const x = E.toArray(a),
    y = E.toArray(b);
  return x.filter((v, i) => v === y[i]).length / x.length;
};

/**
 * Runs `fn` with the int8 weight format forced (VTOK_INT8_KERNEL, read by the backend at each quantization), so
 * that the format an AVX2-only CPU uses is tested on this one too.
 */
async function withWeights<T>(weights: E.Int8Weights, fn: () => T | Promise<T>): Promise<T> {
  const before = process.env.VTOK_INT8_KERNEL;
  process.env.VTOK_INT8_KERNEL = weights;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.VTOK_INT8_KERNEL;
    else process.env.VTOK_INT8_KERNEL = before;
  }
}
const OWN = E.backend().int8Kernels().weights;
/** This CPU's format and int7, the one x86 CPUs without VNNI use (uint8 is checked on the small LARP). */
const MAIN_FORMATS = [...new Set([OWN, 'int7'] as const)];
const ALL_FORMATS = [...new Set([OWN, 'uint8', 'int7'] as const)];

describe('int8 tokenizers', () => {
  for (const weights of MAIN_FORMATS)
    it(
      `shipped MAGVIT-v2 tiny (${weights} weights): int8 PSNR ` +
        'within 0.3 dB of fp32 on held-out clips, ids mostly agree',
      () =>
        withWeights(weights, async () => {
          E.setRuntimeDefaults({ threads: 2 });
          const { tokenizer } = loadTokenizer(MODEL);
          const fp32 = tokenizer as Magvit2Tokenizer;
          const int8 = new Magvit2Tokenizer(fp32.cfg, fp32.model);
          const calib = await clips('train', 4);
          int8.setPrecision('int8', { calibration: E.concrete(calib.data, calib.shape, 'float32') });
          assert.equal(int8.precision, 'int8');
          const test = await clips('test', 4);
          const r32 = evaluateReconstruction(fp32, [test]);
          const r8 = evaluateReconstruction(int8, [test]);
          assert.ok(
            Math.abs(r8.psnr - r32.psnr) < 0.3,
            `PSNR fp32 ${r32.psnr.toFixed(3)} dB, int8 ${r8.psnr.toFixed(3)} dB`,
          );
          const x = E.concrete(test.data, test.shape, 'float32');
          const ids32 = fp32.encode(x),
            ids8 = int8.encode(x);
          // ORT runs the quantized convolutions as QLinearConv (all but the encoder's last conv and the 1- and
          // 10-channel input convs, which stay float32)
          const programs = (
            int8 as unknown as {
              programs(p: string): { encode: CompiledFn<[Tensor], E.Tree>; decode: CompiledFn<[Tensor], Tensor> };
            }
          ).programs('int8');
          for (const c of [programs.encode.compile(x), programs.decode.compile(ids32)]) {
            const counts = E.optimizedOpCounts(c.model, { threads: 2 });
            assert.ok(c.quantization!.conv >= 11, `${c.quantization!.conv} quantized convolutions`);
            assert.equal(counts.QLinearConv, c.quantization!.conv, JSON.stringify(counts));
          }
          const agree = agreement(ids32, ids8);
          // measured 94-95 % of the 10-bit ids (99.4 % of the bits); a broken quantizer agrees on almost none
          assert.ok(agree > 0.85, `id agreement ${agree}`);
          // the int8 programs really differ from fp32 (decode of the same ids is close but not identical)
          const d32 = fp32.decode(ids32).data as Float32Array,
            d8 = int8.decode(ids32).data as Float32Array;
          let maxDiff = 0;
          for (let i = 0; i < d32.length; i++) maxDiff = Math.max(maxDiff, Math.abs(d32[i]! - d8[i]!));
          assert.ok(maxDiff > 0 && maxDiff < 0.5, `max |fp32 − int8| decode ${maxDiff}`);
          // release() drops the compiled programs (fp32 and int8); encoding again recompiles to the same ids
          fp32.release();
          assert.deepEqual(E.toArray(fp32.encode(x)), E.toArray(ids32));
          assert.ok(storesWeights(programs.encode.compile(x).model, weights), `${weights} weights in the model`);
          console.log(
            `# magvit2-tiny, 4 held-out clips, ${weights} weights: PSNR fp32 ` +
              `${r32.psnr.toFixed(3)} dB, int8 ${r8.psnr.toFixed(3)} dB; ` +
              `SSIM ${r32.ssim.toFixed(4)} / ${r8.ssim.toFixed(4)}; id agreement ${(100 * agree).toFixed(1)}%`,
          );
        }),
    );

  for (const weights of ALL_FORMATS)
    it(`LARP int8 (${weights} weights): quantized matmuls, deterministic ids close to fp32`, () =>
      withWeights(weights, () => {
        E.seed(3);
        const width = 64;
        const tok = LarpTokenizer.fromConfig({
          bottleneck: {
            name: 'bottleneck',
            args: {
              bottleneck_dim: 8,
              norm: 'none',
              regularizer: {
                name: 'vq',
                args: {
                  codebook_size: 64,
                  commitment_loss_weight: 0.25,
                  codebook_loss_weight: 1.0,
                  entropy_loss_weight: 0.0,
                  l2_normalized: true,
                  stochastic: true,
                  stochastic_temperature: 0.03,
                },
              },
            },
          },
          prior_model: { name: 'none' },
          bottleneck_token_num: 16,
          input_size: 16,
          frame_num: 4,
          temporal_patch_size: 2,
          patch_size: 4,
          decoder_temporal_patch_size: 2,
          decoder_patch_size: 4,
          in_channels: 3,
          query_init_std: 0.02,
          encoder_hidden_size: width,
          decoder_hidden_size: width,
          encoder_num_heads: 4,
          decoder_num_heads: 4,
          encoder_depth: 2,
          decoder_depth: 2,
        });
        // the reference zero-initialises the head; give it weights so decode is not trivially constant
        tok.model.final_layer.linear.weight.value = E.mul(
          E.randomNormal(tok.model.final_layer.linear.weight.shape),
          0.05,
        );
        const int8 = new LarpTokenizer(tok.model);
        int8.setPrecision('int8');
        const x = E.concrete(
          new Rng(9).uniform(2 * 3 * 4 * 16 * 16).map((v) => 2 * v - 1),
          [2, 3, 4, 16, 16],
          'float32',
        );
        const ids32 = tok.encode(x),
          ids8 = int8.encode(x);
        assert.deepEqual(E.toArray(int8.encode(x)), E.toArray(ids8), 'deterministic');
        const agree = agreement(ids32, ids8);
        assert.ok(agree > 0.8, `id agreement ${agree}`);
        const d32 = tok.decode(ids32).data as Float32Array,
          d8 = int8.decode(ids32).data as Float32Array;
        const err = relativeRmsError(d32, d8);
        assert.ok(err > 0 && err < 0.05, `relative decode error ${err}`);
        console.log(
          `# small LARP, ${weights} weights: id agreement ${(100 * agree).toFixed(1)}%, ` +
            `relative decode error ${err.toExponential(2)}`,
        );
        // replacing a weight recompiles the baked int8 programs
        const w = tok.model.final_layer.linear.weight;
        w.value = E.mul(w.value, 2);
        const d8b = int8.decode(ids32).data as Float32Array;
        assert.ok(Math.abs(d8b[0]! - d8[0]!) > 0 || Math.abs(d8b[1]! - d8[1]!) > 0, 'new weights are used');
        // release() closes the compiled programs; the next call compiles again and gives the same ids
        const before32 = E.toArray(tok.encode(x)),
          before8 = E.toArray(int8.encode(x));
        tok.release();
        int8.release();
        assert.deepEqual(E.toArray(tok.encode(x)), before32);
        assert.deepEqual(E.toArray(int8.encode(x)), before8);
      }));

  it('clear errors: calibration clips of the wrong shape, unknown precision, a tokenizer without int8', async () => {
    const { tokenizer } = loadTokenizer(MODEL);
    const tok = tokenizer as Magvit2Tokenizer;
    assert.throws(
      () => tok.setPrecision('int8', { calibration: E.zeros([2, 3, 5, 64, 64]) }),
      /calibration clips must be N×1×T×H×W, got \[2,3,5,64,64\]/,
    );
    assert.throws(() => tok.setPrecision('int4' as never), /unknown precision "int4"/);
    // clips of another size than the input: named when the program is compiled
    tok.setPrecision('int8', { calibration: E.zeros([2, 1, 5, 32, 32]) });
    assert.throws(
      () => tok.encode(E.zeros([1, 1, 5, 64, 64])),
      /calibration clips are \[2,1,5,32,32\], the input clips are \[1,5,64,64\]/,
    );
    const plain = {
      kind: 'soundstream',
      modality: 'audio',
      config: {},
      vocabBits: 4,
      vocabSize: 16,
      clipFrames: 1,
      grid: () => ({ shape: [1] }),
      encode: (x: Tensor) => x,
      decode: (x: Tensor) => x,
      encodeAsync: async (x: Tensor) => x,
      decodeAsync: async (x: Tensor) => x,
    } as Tokenizer;
    assert.throws(() => setTokenizerPrecision(plain, 'int8'), /soundstream tokenizer has no int8 inference/);
    setTokenizerPrecision(plain, 'fp32');
  });

  it('vtok info names the int8 kernels (and rejects a bad VTOK_INT8_KERNEL)', () => {
    const info = (env: Record<string, string>) =>
      spawnSync(process.execPath, [MAIN, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
    const own = JSON.parse(info({}).stdout);
    assert.equal(own.int8.weights, OWN);
    assert.match(own.backend, /^onnxruntime-node /);
    const forced = JSON.parse(info({ VTOK_INT8_KERNEL: 'int7' }).stdout);
    assert.deepEqual(forced.int8, { weights: 'int7', reason: 'forced by VTOK_INT8_KERNEL=int7' });
    const bad = info({ VTOK_INT8_KERNEL: 'int9' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /VTOK_INT8_KERNEL="int9": expected one of int8, uint8, int7 or auto/);
  });

  it('vtok eval --precision int8 (and a bad --precision value)', () => {
    const r = spawnSync(
      process.execPath,
      [MAIN, 'eval', '--model', MODEL, '--clips', '2', '--batch', '2', '--precision', 'int8', '--json'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.precision, 'int8');
    assert.ok(s.psnr > 20, `PSNR ${s.psnr}`);
    const bad = spawnSync(process.execPath, [MAIN, 'eval', '--model', MODEL, '--precision', 'fp8'], {
      encoding: 'utf8',
    });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--precision must be fp32 or int8, got "fp8"/);
  });

  it('vtok encode / decode --precision int8', async () => {
    const dir = tempDir('int8-cli');
    const video = await makeTestVideo(join(dir, 'in.mp4'), {
      width: 64,
      height: 64,
      fps: 8,
      frames: 10,
      source: 'testsrc2',
    });
    const vtok = (...args: string[]) => {
      const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    // the model takes gray clips; the colour test source is converted only when asked (--gray)
    const enc = vtok(
      'encode',
      video,
      '--model',
      MODEL,
      '-o',
      join(dir, 'int8.vtok'),
      '--precision',
      'int8',
      '--gray',
      '--json',
    );
    assert.deepEqual([enc.precision, enc.frames, enc.clips], ['int8', 10, 2]);
    vtok('encode', video, '--model', MODEL, '-o', join(dir, 'fp32.vtok'), '--gray', '--json');
    // the same tokens decoded in fp32 and int8
    vtok('decode', join(dir, 'fp32.vtok'), '-o', join(dir, 'fp32.gif'), '--json');
    vtok('decode', join(dir, 'fp32.vtok'), '-o', join(dir, 'int8.gif'), '--precision', 'int8', '--json');
    const a = await readAllFrames(join(dir, 'fp32.gif')),
      b = await readAllFrames(join(dir, 'int8.gif'));
    assert.equal(b.length, 10);
    const p = psnrFrames(a, b).mean;
    assert.ok(p > 25, `int8 vs fp32 decode PSNR ${p}`);
  });
});
