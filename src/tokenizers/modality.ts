import type { Tensor } from '../engine/core.js';
import { type ClipTensor, type Frame, tensorToClips } from '../io/frame.js';
import { writeVideo } from '../io/video.js';
import type { Module } from '../nn/module.js';
import { PatchDiscriminator3D } from '../nn/discriminator.js';
import { VtokError } from '../util/errors.js';
import { evaluateReconstruction } from './reconstruction.js';
import type { Modality, Tokenizer } from './tokenizer.js';

/**
 * What training and evaluating a tokenizer needs that depends on its input's modality: reconstruction metrics,
 * samples a person can look at, and the discriminator of the adversarial term. The tokenizer training task looks
 * the kit up by `tokenizer.modality` instead of assuming video.
 */
export interface ModalityKit {
  readonly modality: Modality;
  /** Reconstruction quality and token statistics over batches of inputs in [-1, 1]. */
  evaluate(tok: Tokenizer, batches: Iterable<ClipTensor>): Record<string, number>;
  /**
   * Writes the first inputs of a batch beside their reconstructions to `stem` + the kit's extension; returns the path.
   */
  writeSamples(stem: string, input: Tensor, recon: Tensor): Promise<string>;
  /** A discriminator for inputs of this modality with `channels` channels. */
  discriminator(channels: number, o: { ndf: number; layers: number }): Module & { forward(x: Tensor): Tensor };
}

/**
 * Video (N×C×T×H×W): PSNR, SSIM, bits per pixel and codebook usage; a GIF of input | reconstruction pairs; the 3D
 * PatchGAN. Image tokenizers take the same clip layout (each frame coded on its own), so they share it.
 */
const frames: Omit<ModalityKit, 'modality'> = {
  evaluate(tok, batches) {
    const { clips: _clips, ...report } = evaluateReconstruction(tok, batches);
    return { ...report };
  },
  async writeSamples(stem, input, recon) {
    const real = tensorToClips(input.data as Float32Array, input.shape),
      fake = tensorToClips(recon.data as Float32Array, recon.shape);
    const n = Math.min(4, real.length);
    const out = real[0]!.map((_, t) =>
      sideBySide(Array.from({ length: n }, (_, i) => [real[i]![t]!, fake[i]![t]!]).flat()),
    );
    const path = `${stem}.gif`;
    await writeVideo(path, out, { fps: 4 });
    return path;
  },
  discriminator: (channels, o) => new PatchDiscriminator3D({ channels, ndf: o.ndf, layers: o.layers }),
};

const KITS: Partial<Record<Modality, ModalityKit>> = {
  video: { modality: 'video', ...frames },
  image: { modality: 'image', ...frames },
};

export function modalityKit(modality: Modality): ModalityKit {
  const kit = KITS[modality];
  if (!kit)
    throw new VtokError(
      `no metrics, samples or discriminator for ${modality} tokenizers yet (have: ${Object.keys(KITS).join(', ')})`,
    );
  return kit;
}

/** Frames placed left to right with a 2-pixel white gap (pairs: input, reconstruction). */
function sideBySide(frames: Frame[]): Frame {
  const gap = 2,
    w = frames[0]!.width,
    h = frames[0]!.height;
  const W = frames.length * w + (frames.length - 1) * gap;
  const data = new Uint8Array(W * h * 3).fill(255);
  frames.forEach((f, k) => {
    for (let y = 0; y < h; y++) data.set(f.data.subarray(y * w * 3, (y + 1) * w * 3), (y * W + k * (w + gap)) * 3);
  });
  return { width: W, height: h, data };
}
