import type { ArmName, StudyBudget } from './budget.js';

export interface ArmResult {
  recon: { psnr: number; ssim: number; codebook_usage: number; perplexity: number; frechet: number };
  tokens: { vocab_size: number; codebook_usage_train: number; unigram_bits: number };
  ar: { nll_nats: number; nll_bits: number; perplexity: number; per_position_nats: number[] };
  generation: { frechet: number; samples: number };
  timings_s: Record<string, number>;
}

export interface StudyResults {
  study: 'larp-prior';
  budget: StudyBudget & { name: string };
  seed: number;
  classifier: { accuracy: Record<string, number>; feature_dim: number; held_out: number };
  reference: {
    frechet_real_vs_real: number;
    /**
     * PSNR on the held-out clips of predicting, for every clip, the per-pixel mean of training clips: a tokenizer below
     * it has learned nothing clip-specific.
     */
    psnr_mean_clip: number;
    /**
     * PSNR on the held-out clips of replacing each clip by its own mean colour, and each 4×8×8 patch (the tokenizer's
     * patch) by its mean colour: what a tokenizer scores that keeps only a clip's colour, or only coarse colour per
     * patch.
     */
    psnr_clip_colour: number;
    psnr_patch_colour: number;
  };
  arms: Record<ArmName, ArmResult>;
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

export function markdownTable(r: StudyResults): string {
  const p = r.arms.prior,
    n = r.arms.noprior;
  const usage = (a: ArmResult) =>
    `${f(100 * a.tokens.codebook_usage_train, 1)} % ` +
    `(${Math.round(a.tokens.codebook_usage_train * a.tokens.vocab_size)} of ${a.tokens.vocab_size})`;
  const row = (name: string, a: string, c: string) => `| ${name} | ${a} | ${c} |`;
  const lines = [
    `| ${r.budget.name} budget, seed ${r.seed} | LARP with prior | LARP without prior |`,
    '|---|---|---|',
    row(
      'reconstruction PSNR, held-out (dB) ↑ — the mean training clip gets ' +
        `${f(r.reference.psnr_mean_clip)}, each clip's mean colour ${f(r.reference.psnr_clip_colour)}, ` +
        `each patch's mean colour ${f(r.reference.psnr_patch_colour)}`,
      f(p.recon.psnr),
      f(n.recon.psnr),
    ),
    row('reconstruction SSIM ↑', f(p.recon.ssim, 3), f(n.recon.ssim, 3)),
    row('codebook usage, training tokens (codes used)', usage(p), usage(n)),
    row(
      'unigram cross-entropy of held-out tokens (bits/token)',
      f(p.tokens.unigram_bits, 3),
      f(n.tokens.unigram_bits, 3),
    ),
    row('**AR validation NLL (nats/token)** ↓', `**${f(p.ar.nll_nats, 3)}**`, `**${f(n.ar.nll_nats, 3)}**`),
    row('AR validation NLL (bits/token) ↓', f(p.ar.nll_bits, 3), f(n.ar.nll_bits, 3)),
    row(
      'AR gain over unigram (bits/token) ↑',
      f(p.tokens.unigram_bits - p.ar.nll_bits, 3),
      f(n.tokens.unigram_bits - n.ar.nll_bits, 3),
    ),
    row(
      `**Fréchet distance, ${p.generation.samples} generated vs held-out** ↓`,
      `**${f(p.generation.frechet)}**`,
      `**${f(n.generation.frechet)}**`,
    ),
    row('Fréchet distance, reconstructions vs held-out ↓', f(p.recon.frechet), f(n.recon.frechet)),
  ];
  const acc = Object.entries(r.classifier.accuracy)
    .map(([k, v]) => `${k} ${f(100 * v, 1)} %`)
    .join(', ');
  lines.push(
    '',
    "Fréchet distances use vtok's own 3D-CNN classifier (penultimate layer, " +
      `${r.classifier.feature_dim}-d; held-out accuracy ${acc}); ` +
      `two independent sets of ${r.budget.samples} real clips are ${f(r.reference.frechet_real_vs_real)} apart.`,
  );
  return `${lines.join('\n')}\n`;
}
