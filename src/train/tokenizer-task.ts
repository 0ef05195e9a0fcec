import { join } from 'node:path';
import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import type { Batch } from '../data/dataset.js';
import { discriminatorLoss, generatorLoss, lecam, LecamEma, type GanLoss } from '../losses/gan.js';
import { bindParams } from '../nn/index.js';
import { AdamW, stepLog, TrainStep, warmupCosine } from '../nn/train.js';
import { modalityKit } from '../tokenizers/modality.js';
import type { TokenizerModel } from '../tokenizers/kind.js';
import type { TrainTask } from './loop.js';

/**
 * Training a tokenizer: the generator step (reconstruction + the tokenizer's own quantizer/prior losses, plus an
 * adversarial term when a discriminator is on) and, with --gan, the discriminator's own compiled step (hinge or
 * non-saturating, LeCam). Evaluation reconstructs a fixed held-out batch. The discriminator, the metrics and the
 * samples come from the tokenizer's modality (src/tokenizers/modality.ts; for video: the 3D PatchGAN, PSNR, SSIM and
 * codebook usage, GIFs of inputs beside reconstructions).
 */
export interface TokenizerTrainOptions {
  lr: number;
  steps: number;
  warmup?: number;
  betas?: [number, number];
  weightDecay?: number;
  clipNorm?: number;
  emaDecay?: number;
  gan?: { weight: number; loss: GanLoss; lecamWeight: number; ndf: number; layers: number; start: number };
  /**
   * A perceptual term added to the generator loss: weight · distance(video, recon) (graph code, e.g. PerceptualLoss).
   */
  perceptual?: { weight: number; distance(video: Tensor, recon: Tensor): Tensor };
}

export type GenBatch = { video: Tensor; step: Tensor; disc: Tensor[] };

export function tokenizerTask(m: TokenizerModel, o: TokenizerTrainOptions, heldOut: Batch): TrainTask<Batch> {
  const channels = heldOut.shape[1];
  const kit = modalityKit(m.tokenizer.modality);
  const disc = o.gan ? kit.discriminator(channels, { ndf: o.gan.ndf, layers: o.gan.layers }) : null;
  const discParams = disc ? disc.namedParams().map(([, p]) => p) : [];
  const schedule = warmupCosine(o.lr, o.warmup ?? Math.min(500, Math.round(o.steps / 20)), o.steps, o.lr / 10);
  const gen = new TrainStep<GenBatch>(
    m.module,
    (b) => {
      const out = m.loss(b.video, b.step);
      let loss = out.loss;
      const metrics = { ...out.metrics };
      if (o.perceptual) {
        const p = o.perceptual.distance(b.video, out.recon);
        metrics.perceptual = p;
        loss = E.add(loss, E.mul(p, o.perceptual.weight));
      }
      if (disc && o.gan) {
        // The discriminator's weights are inputs of the generator's graph (not baked constants): they change every
        // step.
        const logits = bindParams(discParams, b.disc, () => disc.forward(out.recon));
        const g = generatorLoss(logits, o.gan.loss);
        metrics.g_adv = g;
        loss = E.add(loss, E.mul(g, o.gan.weight));
      }
      return { loss, metrics, outputs: { recon: E.stopGradient(out.recon) } };
    },
    {
      optimizer: new AdamW({ betas: o.betas ?? [0.9, 0.99], weightDecay: o.weightDecay ?? 0 }),
      schedule,
      clipNorm: o.clipNorm ?? 1,
      emaDecay: o.emaDecay,
    },
  );

  const ema = new LecamEma();
  const dstep =
    disc && o.gan
      ? new TrainStep(
          disc,
          (b: { real: Tensor; fake: Tensor; emaReal: Tensor; emaFake: Tensor }) => {
            const real = disc.forward(b.real),
              fake = disc.forward(b.fake);
            const d = discriminatorLoss(real, fake, o.gan!.loss);
            const lc = lecam(E.mean(real), E.mean(fake), b.emaReal, b.emaFake);
            return {
              loss: E.add(d, E.mul(lc, o.gan!.lecamWeight)),
              metrics: { d_loss: d, real: E.mean(real), fake: E.mean(fake) },
            };
          },
          { optimizer: new AdamW({ betas: o.betas ?? [0.5, 0.9], weightDecay: 0 }), schedule },
        )
      : null;

  const videoOf = (b: Batch) => E.concrete(b.data, b.shape, 'float32');
  const heldVideo = videoOf(heldOut);
  return {
    modules: disc ? { model: m.module, discriminator: disc } : { model: m.module },
    steps: dstep ? { model: gen, discriminator: dstep } : { model: gen },
    iterate(batch, step) {
      const video = videoOf(batch);
      const r = gen.run({ video, step: E.scalar(step), disc: discParams.map((p) => p.value) });
      const out: Record<string, number> = { ...stepLog(r), ...r.metrics };
      if (dstep && o.gan && step >= o.gan.start) {
        const d = dstep.run({
          real: video,
          fake: r.outputs.recon!,
          emaReal: E.scalar(ema.real),
          emaFake: E.scalar(ema.fake),
        });
        ema.update(d.metrics.real!, d.metrics.fake!);
        Object.assign(out, d.metrics);
      }
      return out;
    },
    evaluate() {
      return kit.evaluate(m.tokenizer, [heldOut]);
    },
    async samples(dir, step) {
      const recon = m.tokenizer.decode(m.tokenizer.encode(heldVideo));
      await kit.writeSamples(join(dir, `recon-${String(step).padStart(7, '0')}`), heldVideo, recon);
      await kit.writeSamples(join(dir, 'recon-latest'), heldVideo, recon);
    },
  };
}
