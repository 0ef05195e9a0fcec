import { type ClipTensor, tensorToClips } from '../io/frame.js';
import { psnrFromMse } from '../metrics/psnr.js';
import { ssimFrames } from '../metrics/ssim.js';
import { bitsPerPixel, codebookUsage } from '../metrics/tokens.js';
import { decodeTokens, encodeClips } from './batch.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * How well a tokenizer reconstructs: encode → decode batches of clips in [-1, 1], then PSNR (over all pixels,
 * 8-bit scale, reconstructions clamped), mean SSIM per frame, bits per pixel of the ids, and codebook usage and
 * perplexity over all ids.
 */
export interface ReconstructionReport {
  psnr: number;
  ssim: number;
  bpp: number;
  codebook_usage: number;
  perplexity: number;
  clips: number;
}

export function evaluateReconstruction(tok: Tokenizer, batches: Iterable<ClipTensor>): ReconstructionReport {
  let se = 0,
    n = 0,
    ssimSum = 0,
    clips = 0,
    bpp = 0;
  const ids: Int32Array[] = [];
  for (const b of batches) {
    const tokens = encodeClips(tok, b);
    const recon = decodeTokens(tok, tokens).data;
    for (let i = 0; i < b.data.length; i++) {
      const d = (Math.max(-1, Math.min(1, recon[i]!)) - b.data[i]!) * 127.5;
      se += d * d;
    }
    n += b.data.length;
    const real = tensorToClips(b.data, b.shape),
      fake = tensorToClips(recon, b.shape);
    real.forEach((clip, i) => {
      ssimSum += ssimFrames(clip, fake[i]!).mean;
    });
    clips += real.length;
    ids.push(tokens.ids);
    const [, , T, H, W] = b.shape;
    bpp = bitsPerPixel(tokens.ids.length / b.shape[0], tok.vocabSize, T, H, W);
  }
  const usage = codebookUsage(ids, tok.vocabSize);
  return {
    psnr: psnrFromMse(se / n),
    ssim: ssimSum / clips,
    bpp,
    codebook_usage: usage.usage,
    perplexity: usage.perplexity,
    clips,
  };
}
