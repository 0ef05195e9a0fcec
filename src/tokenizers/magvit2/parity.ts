import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { commitmentLoss, LFQ, lfqCodebook, lfqQuantize, tokens } from '../../quantizers/lfq.js';
import { Magvit2Model, Magvit2Tokenizer, parseMagvit2Config } from './index.js';
import type { GoldenFile, ParityRunner } from '../../parity/index.js';

/**
 * Parity cases for Open-MAGVIT2 (the causal 3-D video tokenizer, the 2-D image tokenizer, and its LFQ) and for
 * lucidrains' LFQ. Models are built from the golden config, weights loaded strictly by their original names.
 */

/** magvit2_video / magvit2_image: encode → ids (flattened over (b, t, h, w) like LFQ.forward) → decode(ids). */
function runTokenizer(g: GoldenFile): Map<string, Tensor> {
  const cfg = parseMagvit2Config(g.config);
  const model = new Magvit2Model(cfg);
  model.loadStateDict(g.params(), { source: g.path });
  const tok = new Magvit2Tokenizer(cfg, model);
  const out = new Map<string, Tensor>();
  for (const sfx of ['', '_t1']) {
    if (!g.tensors.has(`input.x${sfx}`)) continue;
    let x = g.get(`input.x${sfx}`);
    // The image tokenizer takes videos; an NCHW image is a 1-frame clip.
    if (cfg.kind === 'image') x = E.unsqueeze(x, 2);
    const { latent, quantized, indices } = tok.encodeFull(x);
    let recon = tok.decode(tok.encode(x));
    if (cfg.kind === 'image') recon = E.squeeze(recon, 2);
    out.set(`inter.latent${sfx}`, latent);
    out.set(`output.quantized${sfx}`, quantized);
    out.set(`output.indices${sfx}`, E.reshape(indices, [-1]));
    out.set(`output.recon${sfx}`, recon);
  }
  return out;
}

interface OpenLfqConfig {
  LFQ: {
    dim: number;
    codebook_size: number;
    num_codebooks?: number;
    sample_minimization_weight?: number;
    batch_maximization_weight?: number;
    token_factorization?: boolean;
  };
  loss_weights: { codebook_weight: number; commit_weight: number; temperature?: number };
}

/** Open-MAGVIT2 LFQ: eval-mode codes/ids, train-mode entropies (full 2^D joint) and commitment. */
function runOpenLfq(g: GoldenFile): Map<string, Tensor> {
  const cfg = g.config as unknown as OpenLfqConfig;
  const c = cfg.LFQ;
  if ((c.num_codebooks ?? 1) !== 1 || c.token_factorization)
    throw new Error('lfq_openmagvit2: only one codebook without token factorization');
  const lfq = new LFQ({
    dim: c.dim,
    temperature: cfg.loss_weights.temperature ?? 0.01,
    groupBits: c.dim,
    sampleWeight: c.sample_minimization_weight ?? 1,
    batchWeight: c.batch_maximization_weight ?? 1,
  });
  const x = g.get('input.x');
  const out = new Map<string, Tensor>();
  const evalOut = E.jit((z: Tensor) => {
    const { quantized, indices } = lfq.eval().forward(z);
    return { quantized, indices };
  })(x) as { quantized: Tensor; indices: Tensor };
  out.set('output.quantized', evalOut.quantized);
  out.set('output.indices', E.reshape(evalOut.indices, [-1]));
  const l = E.jit((z: Tensor) => {
    const losses = lfq.train().losses(z);
    const logits = E.mul(E.matmul(tokens(z), E.transpose(lfqCodebook(c.dim))), 2);
    return { ...losses, logits: E.reshape(logits, [z.shape[0]!, -1, 1, 2 ** c.dim]) };
  })(x) as Record<string, Tensor>;
  out.set('output.per_sample_entropy', l.perSampleEntropy!);
  out.set('output.codebook_entropy', l.codebookEntropy!);
  out.set('output.commitment', l.commitment!);
  out.set('output.entropy_aux_loss', l.entropy!);
  out.set(
    'output.total_aux_loss',
    E.add(E.mul(l.entropy!, cfg.loss_weights.codebook_weight), E.mul(l.commitment!, cfg.loss_weights.commit_weight)),
  );
  out.set('inter.codebook', lfqCodebook(c.dim));
  out.set('inter.entropy_logits', l.logits!);
  return out;
}

interface LucidrainsLfqConfig {
  LFQ: {
    dim: number;
    codebook_size: number;
    entropy_loss_weight: number;
    commitment_loss_weight: number;
    diversity_gamma: number;
    num_codebooks?: number;
    codebook_scale?: number;
    soft_clamp_input_value?: number | null;
    spherical?: boolean;
    frac_per_sample_entropy?: number;
  };
  forward: { inv_temperature?: number };
}

/**
 * lucidrains LFQ: MSB-first ids kept in (b, …spatial) shape (with a trailing codebook axis when num_codebooks > 1,
 * each codebook's bits numbered within it), clamped-log entropies averaged over codebooks, weighted aux loss.
 */
function runLucidrainsLfq(g: GoldenFile): Map<string, Tensor> {
  const c = (g.config as unknown as LucidrainsLfqConfig).LFQ;
  const fwd = (g.config as unknown as LucidrainsLfqConfig).forward ?? {};
  const nc = c.num_codebooks ?? 1;
  const bits = Math.round(Math.log2(c.codebook_size));
  if (
    2 ** bits !== c.codebook_size ||
    c.dim !== bits * nc ||
    (c.codebook_scale ?? 1) !== 1 ||
    c.spherical ||
    c.soft_clamp_input_value != null ||
    (c.frac_per_sample_entropy ?? 1) !== 1
  ) {
    throw new Error(
      'lfq_lucidrains: supported are dim = log2(codebook_size)·num_codebooks ' +
        '(no projections), scale 1, no clamp, not spherical, all tokens',
    );
  }
  // The persistent `mask` buffer (2^(d−1−i) per bit of one codebook) loads strictly into an LFQ of one codebook.
  new LFQ({ dim: bits, bitOrder: 'msb', maskBuffer: true }).loadStateDict(g.params(), { source: g.path });
  const lfq = new LFQ({
    dim: c.dim,
    bitOrder: 'msb',
    style: 'lucidrains',
    groupBits: bits,
    temperature: 1 / (fwd.inv_temperature ?? 100),
    batchWeight: c.diversity_gamma,
  });
  const x = g.get('input.x');
  const out = new Map<string, Tensor>();
  const r = E.jit((z: Tensor) => {
    const q = lfq.eval().forward(z);
    const l = lfq.train().losses(z);
    const indices =
      nc === 1
        ? q.indices
        : E.stack(
            Array.from({ length: nc }, (_, k) => lfqQuantize(E.narrow(z, 1, k * bits, bits), 'msb').indices),
            -1,
          );
    // Train mode returns z + (q − z) computed in floats (differs from ±1 by rounding), eval mode exactly ±1.
    const qTrain = E.add(z, E.stopGradient(E.sub(q.quantized, z)));
    const commit = c.commitment_loss_weight ? commitmentLoss(z) : E.scalar(0);
    return {
      quantized: q.quantized,
      indices,
      ...l,
      commit,
      qTrain,
      aux: E.add(E.mul(l.entropy, c.entropy_loss_weight), E.mul(commit, c.commitment_loss_weight)),
    };
  })(x) as Record<string, Tensor>;
  out.set('output.quantized', r.quantized!);
  out.set('output.quantized_train', r.qTrain!);
  out.set('output.indices', r.indices!);
  out.set('output.per_sample_entropy', r.perSampleEntropy!);
  out.set('output.batch_entropy', r.codebookEntropy!);
  out.set('output.entropy_aux_loss', r.entropy!);
  out.set('output.aux_loss', r.aux!);
  if (g.tensors.has('output.commitment')) out.set('output.commitment', r.commit!);
  out.set('inter.codebook', lfqCodebook(bits, 'msb'));
  return out;
}

/** Intermediates are compared only where the golden file stores them (outputs always). */
const storedOnly = (run: (g: GoldenFile) => Map<string, Tensor>) => (g: GoldenFile) =>
  new Map([...run(g)].filter(([k]) => !k.startsWith('inter.') || g.tensors.has(k)));

/** The Open-MAGVIT2 tokenizers, and the LFQs of Open-MAGVIT2 and lucidrains that MAGVIT-v2's quantizer follows. */
export const magvit2Parity: Record<string, ParityRunner> = {
  magvit2_video: storedOnly(runTokenizer),
  magvit2_image: storedOnly(runTokenizer),
  lfq_openmagvit2: storedOnly(runOpenLfq),
  lfq_lucidrains: storedOnly(runLucidrainsLfq),
};
