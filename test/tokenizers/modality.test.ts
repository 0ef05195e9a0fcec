import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import type { ClipTensor } from '../../src/io/frame.js';
import { probeVideo } from '../../src/io/video.js';
import { modalityKit } from '../../src/tokenizers/modality.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

/** A tokenizer that reconstructs every value scaled by `gain` (ids: one zero per clip). */
function scaling(gain: number): Tokenizer {
  let last: Tensor | null = null;
  return {
    kind: 'scaling',
    modality: 'video',
    config: {},
    vocabBits: 1,
    vocabSize: 2,
    clipFrames: 2,
    grid: () => ({ shape: [1] }),
    encode: (x) => {
      last = x;
      return E.concrete(new BigInt64Array(x.shape[0]), [x.shape[0]!, 1], 'int64');
    },
    decode: () =>
      E.concrete(
        (last!.data as Float32Array).map((v) => v * gain),
        last!.shape,
        'float32',
      ),
    encodeAsync: () => Promise.reject(new Error('not used')),
    decodeAsync: () => Promise.reject(new Error('not used')),
  };
}

describe('modality kits', () => {
  const clips = E.concrete(
    Float32Array.from({ length: 2 * 3 * 2 * 12 * 14 }, (_, i) => Math.sin(i) * 0.9),
    [2, 3, 2, 12, 14],
    'float32',
  );
  const batch: ClipTensor = { data: clips.data as Float32Array, shape: [...clips.shape] as ClipTensor['shape'] };

  it('video: PSNR and SSIM fall as the reconstruction worsens', () => {
    const kit = modalityKit('video');
    const exact = kit.evaluate(scaling(1), [batch]),
      off = kit.evaluate(scaling(0.5), [batch]);
    assert.equal(exact.psnr, Infinity);
    assert.ok(Math.abs(exact.ssim! - 1) < 1e-6, `ssim ${exact.ssim}`);
    assert.ok(off.psnr! > 0 && off.psnr! < 20 && off.ssim! < exact.ssim!, JSON.stringify(off));
    assert.ok(!('clips' in exact));
  });

  it('video: samples are a GIF of input | reconstruction pairs', async () => {
    const stem = join(mkdtempSync(join(tmpdir(), 'vtok-kit-')), 'recon');
    const path = await modalityKit('video').writeSamples(stem, clips, clips);
    assert.equal(path, `${stem}.gif`);
    const info = await probeVideo(path, { exact: true });
    assert.deepEqual([info.width, info.height, info.frames], [4 * 14 + 3 * 2, 12, 2]);
  });

  it('video: the discriminator takes N×C×T×H×W and gives patch logits', () => {
    const d = modalityKit('video').discriminator(3, { ndf: 4, layers: 2 });
    const y = E.jit((x: Tensor) => d.forward(x))(E.zeros([1, 3, 4, 16, 16])) as Tensor;
    assert.equal(y.shape[0], 1);
    assert.equal(y.shape[1], 1);
  });

  it('a modality without a kit is named, not treated as video', () => {
    assert.throws(
      () => modalityKit('audio'),
      /no metrics, samples or discriminator for audio tokenizers yet \(have: video, image\)/,
    );
  });
});
