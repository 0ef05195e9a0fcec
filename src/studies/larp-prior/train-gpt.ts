import { AdamW, stepLog, TrainStep, warmupCosine } from '../../nn/train.js';
import type { TrainTask } from '../../train/loop.js';
import { check } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import { evaluateNll, type Gpt, lmLoss, type LmBatch, nextTokenBatch, type TokenSequences } from './gpt.js';

/**
 * Training a GPT on token sequences with vtok's shared loop (checkpoints, resume, metrics, curves): one compiled
 * step (next-token cross-entropy, AdamW, warmup + cosine, gradient clipping), batches that are a pure function of
 * their index (so a resumed run sees the same data), and validation NLL per token as the evaluation.
 */
export interface GptTrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  /** Warmup steps (default 5% of the run). */
  warmup?: number;
  /** Final learning rate as a fraction of lr (default 0.1). */
  minLrRatio?: number;
  weightDecay?: number;
  clipNorm?: number;
  betas?: [number, number];
  /** Seed of the batch order. */
  seed?: number;
}

export function gptTrainStep(model: Gpt, o: GptTrainOptions): TrainStep<LmBatch> {
  const schedule = warmupCosine(
    o.lr,
    o.warmup ?? Math.max(1, Math.round(o.steps / 20)),
    o.steps,
    o.lr * (o.minLrRatio ?? 0.1),
  );
  return new TrainStep<LmBatch>(model, (b) => lmLoss(model, b.inputs, b.targets), {
    optimizer: new AdamW({ betas: o.betas ?? [0.9, 0.95], weightDecay: o.weightDecay ?? 0.01 }),
    schedule,
    clipNorm: o.clipNorm ?? 1,
  });
}

/** The task for trainLoop: train on `train`, evaluate NLL (nats and bits per token) on `val`. */
export function gptTask(
  model: Gpt,
  train: TokenSequences,
  val: TokenSequences,
  o: GptTrainOptions & { bos: number },
): TrainTask<LmBatch> {
  check(
    train.length === val.length,
    `train and validation sequences differ in length (${train.length} vs ${val.length})`,
  );
  const step = gptTrainStep(model, o);
  return {
    modules: { model },
    steps: { model: step },
    iterate(batch) {
      return stepLog(step.run(batch));
    },
    evaluate() {
      const r = evaluateNll(model, val, { bos: o.bos });
      return { nll: r.nll, bits: r.bits };
    },
  };
}

/**
 * Batches of rows of `seqs` from batch index `start` on: epochs of a seeded permutation (whole batches only), so
 * batch i is the same whatever batch the run resumed from.
 */
export async function* lmBatches(
  seqs: TokenSequences,
  batchSize: number,
  bos: number,
  seed: number,
  start = 0,
): AsyncGenerator<LmBatch> {
  check(
    Number.isInteger(batchSize) && batchSize > 0 && batchSize <= seqs.count,
    `batch size ${batchSize} must be in [1, ${seqs.count}] (the number of sequences)`,
  );
  const perEpoch = Math.floor(seqs.count / batchSize);
  const root = new Rng(seed);
  let epoch = -1;
  let order: Int32Array = new Int32Array(0);
  for (let i = start; ; i++) {
    const e = Math.floor(i / perEpoch);
    if (e !== epoch) {
      epoch = e;
      order = root.fork(epoch).permutation(seqs.count);
    }
    const k = i % perEpoch;
    yield nextTokenBatch(seqs, order.subarray(k * batchSize, (k + 1) * batchSize), bos);
  }
}
