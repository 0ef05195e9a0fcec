import { join } from 'node:path';
import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { hashSeed, SeededRng } from '../data/seeded.js';
import { gridFrame, tensorToClips, type Frame } from '../io/frame.js';
import { writeVideo } from '../io/video.js';
import { bindParams } from '../nn/index.js';
import { AdamW, stepLog, TrainStep, warmupCosine } from '../nn/train.js';
import { generate } from '../generation/generate.js';
import type { Generator } from '../generation/model-dir.js';
import { prefixLmLoss } from '../generation/prefix-lm/model.js';
import type { TextPrefixLm } from '../generation/prefix-lm/text-lm.js';
import { hideLabel } from '../generation/sequence.js';
import { buildSequence, getTask, textSlotsFor } from '../generation/tasks.js';
import type { ClipRef, ShardReader } from '../corpus/shards.js';
import type { TextTokens } from '../generation/text/encoder.js';
import { buildVocabLayout, hasTextSlot, trainedCondFrames, type VocabLayout } from '../generation/vocab.js';
import { VtokError, check } from '../util/errors.js';
import type { TrainTask } from './loop.js';

/**
 * Training the prefix LM (VideoPoet §4) from token shards with the one training loop: a weighted mixture of
 * tasks, each clip drawing its task per epoch among those its data allows (text tasks need a caption, class a class
 * label; a clip that fits none sits the epoch out); batches of one sequence length each (AGD, §6.3: no padding, so
 * the compiled step sees one shape per length group); optionally an image-first curriculum (only t2i for the first
 * steps, then the video-heavy mixture); condition dropout for classifier-free guidance (a row's text keys all
 * hidden, the layout the sampler's unconditional stream uses; a class label replaced by <pad>, the null label);
 * a task that takes text always has its text slot, hidden for a clip without a caption; AdamW with warmup + cosine
 * and an EMA of the weights. The built-in text encoder is part of the model and trains with it. Evaluation is the
 * validation NLL per task (EMA weights); samples are clips generated from fixed prompts or labels, decoded by the
 * tokenizer, as GIFs.
 */

/** The mixture for captioned data (weights are normalised). `class` joins when every clip has a class label. */
export const DEFAULT_MIXTURE: Record<string, number> = { t2v: 0.4, t2i: 0.1, uncond: 0.1, fp: 0.2, i2v: 0.2 };
/** The mixture for data without captions. */
export const UNCAPTIONED_MIXTURE: Record<string, number> = { uncond: 0.5, fp: 0.5 };

/**
 * Rows of a step: ids [B, S], per-row prefix length, and for text tasks the built-in encoder's ids and mask (or a
 * frozen encoder's embeddings) and the LM's text mask.
 */
export type LmBatch = {
  ids: Tensor;
  prefixLength: Tensor;
  textIds?: Tensor;
  encValid?: Tensor;
  textEmb?: Tensor;
  textValid?: Tensor;
};

/** Where the text slot starts in every layout with text: <bos> <task> <bot_i> (generation/sequence). */
const TEXT_START = 3;

export interface LmTrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  warmup?: number;
  emaDecay?: number;
  seed: number;
  /** Task → weight. */
  mixture: Record<string, number>;
  /** Steps of the image-first curriculum (t2i only); 0 = none. */
  imageSteps?: number;
  /**
   * Rows of an image-phase batch. Default: the batch size times the clip's latent frames, so an image step sees
   * as many visual tokens as a video step (a one-frame sequence is that many times shorter).
   */
  imageBatch?: number;
  /** Probability of hiding a row's text, or its class label (condition dropout for CFG; default 0.1). */
  condDropout?: number;
  /** Validation clips per task (default 16). */
  valClips?: number;
}

/** The class label of a clip, when its labels give one. */
const classOf = (c: ClipRef): number | undefined =>
  typeof c.labels?.class === 'number' ? (c.labels.class as number) : undefined;

/** Whether a clip's data allows a task: text-required tasks need a caption, `class` a class label. */
const fits = (task: string, c: ClipRef): boolean =>
  (getTask(task).text !== 'required' || !!c.caption) && (task !== 'class' || classOf(c) !== undefined);

/**
 * The vocabulary layout for a shard folder: its tokenizer, its clip size, the tasks, (class) the labels, for a model
 * with a text encoder of `textLength` tokens the text slots, and the latent frames frame prediction conditions on.
 */
export function layoutForShards(
  reader: ShardReader,
  tasks: string[],
  o: { textLength?: number; condFrames?: number[] } = {},
): VocabLayout {
  const ix = reader.index;
  check(ix.clips.length > 0, 'the shard folder holds no clips', reader.dir);
  const grid = ix.clips[0]!.grid;
  for (const c of ix.clips)
    check(
      c.grid.join() === grid.join(),
      `clip ${c.source} has token grid [${c.grid}], the first clip [${grid}]: one clip size per corpus`,
      reader.dir,
    );
  let classes = 0;
  if (tasks.includes('class')) {
    const top = Math.max(...ix.clips.map((c) => classOf(c) ?? -1));
    check(top >= 0, 'task class needs class labels, and no clip of these shards has one', reader.dir);
    classes = ix.classes?.length ?? top + 1;
    check(top < classes, `a clip has class label ${top}, the shards name ${classes} classes`, reader.dir);
  }
  return buildVocabLayout({
    tokenizer: ix.tokenizer,
    tasks,
    outputs: [{ key: `${ix.size}x${ix.size}`, frames: ix.clipFrames, height: ix.size, width: ix.size, grid }],
    classes,
    classNames: classes > 0 ? ix.classes : undefined,
    text: o.textLength ? textSlotsFor(tasks, o.textLength) : undefined,
    condFrames: o.condFrames,
  });
}

/**
 * The default mixture for a corpus: captioned tasks when clips have captions (text tasks draw from those only, the
 * others from every clip), `class` when every clip has a class label.
 */
export function defaultMixture(reader: ShardReader): Record<string, number> {
  const clips = reader.index.clips;
  const mix = { ...(clips.some((c) => c.caption) ? DEFAULT_MIXTURE : UNCAPTIONED_MIXTURE) };
  if (clips.every((c) => classOf(c) !== undefined)) mix.class = 0.1;
  return mix;
}

/** Builds batches (host → tensors) from clips with their tasks. */
export class LmBatcher {
  /**
   * The latent frames a frame-prediction row conditions on, drawn per row: the layout's (`condFrames`; rows of any
   * fit one batch, since conditioning and output together are always the whole clip).
   */
  readonly fpCondFrames: readonly number[];

  constructor(
    readonly model: TextPrefixLm,
    readonly layout: VocabLayout,
    readonly condDropout = 0.1,
  ) {
    this.fpCondFrames = trainedCondFrames(layout);
    const slots = layout.text;
    if (slots) {
      check(model.hasText, 'the layout has a text slot, the model no text encoder');
      const L = (model.text ?? model.frozen)!.maxTokens;
      check(slots.length === L, `the layout's text slot is ${slots.length} long, the text encoder's ${L}`);
    }
  }

  /** Sequence length of `task` for a clip (text slot at the encoder's maxTokens). */
  length(task: string): number {
    return this.sequence(
      task,
      new Int32Array(this.layout.outputs[0]!.grid.reduce((a, b) => a * b, 1)),
      this.layout.outputs[0]!.grid,
      'x',
      0,
      Math.min(...this.fpCondFrames),
    ).seq.ids.length;
  }

  /**
   * Whether the task's rows hold a text slot: a task that takes text, on a model with a text encoder, where the layout
   * gives it one. The slot is there with or without a caption (hidden without), so a task has one layout.
   */
  textSlot(task: string): boolean {
    return getTask(task).text !== 'none' && this.model.hasText && (hasTextSlot(this.layout, task) ?? true);
  }

  private sequence(
    task: string,
    ids: Int32Array,
    grid: number[],
    caption: string | undefined,
    label: number | undefined,
    condFrames: number,
  ) {
    const text = !this.textSlot(task) ? undefined : caption ? this.model.tokenize([caption]) : blankText(this.model);
    const seq = buildSequence(this.layout, task, { textTokens: text, target: { ids, grid }, label, condFrames });
    if (seq.text)
      check(seq.text.start === TEXT_START, `task ${task}: text slot at ${seq.text.start}, expected ${TEXT_START}`);
    return { seq, text };
  }

  /** One batch: every row must have the same sequence length. `dropSeed` draws the condition dropout. */
  batch(
    rows: { task: string; ids: Int32Array; grid: number[]; caption?: string; label?: number }[],
    dropSeed: number,
  ): LmBatch {
    const fp = new SeededRng(hashSeed(dropSeed, 0xf9));
    const built = rows.map((r) => {
      const ks = this.fpCondFrames.filter((k) => k < r.grid[0]!);
      const k = r.task === 'fp' && ks.length ? ks[Math.floor(fp.next() * ks.length)]! : 1;
      return this.sequence(r.task, r.ids, r.grid, r.caption, r.label, k);
    });
    // class condition dropout: the row's label becomes <pad>, the null label guidance subtracts
    const labelDrop = new SeededRng(hashSeed(dropSeed, 0xc1a5));
    for (const [b, r] of rows.entries())
      if (r.label !== undefined && labelDrop.next() < this.condDropout)
        built[b]!.seq = hideLabel(this.layout, built[b]!.seq);
    const S = built[0]!.seq.ids.length,
      B = rows.length;
    const withText = built[0]!.text !== undefined;
    const ids = new Int32Array(B * S),
      prefix = new Int32Array(B);
    built.forEach(({ seq, text }, b) => {
      check(
        seq.ids.length === S && (text !== undefined) === withText,
        `a batch mixes sequence layouts (${rows[0]!.task} and ${rows[b]!.task}; one length group per batch)`,
      );
      ids.set(seq.ids, b * S);
      prefix[b] = seq.prefixLength;
    });
    const out: LmBatch = { ids: E.concrete(ids, [B, S], 'int32'), prefixLength: E.concrete(prefix, [B], 'int32') };
    if (withText) {
      const L = built[0]!.text!.maxTokens;
      const tids = new Int32Array(B * L),
        enc = new Uint8Array(B * L),
        lm = new Uint8Array(B * L);
      const rng = new SeededRng(dropSeed);
      built.forEach(({ text }, b) => {
        const n = text!.lengths[0]!;
        tids.set(text!.ids, b * L);
        // the encoder always sees a token (an all-hidden row would be NaN); dropout hides the prompt from the LM only,
        // and a clip without a caption has nothing to show it
        enc.fill(1, b * L, b * L + Math.max(1, n));
        if (!(rng.next() < this.condDropout)) lm.fill(1, b * L, b * L + n);
      });
      const lengths = Int32Array.from(built, ({ text }) => Math.max(1, text!.lengths[0]!));
      if (this.model.frozen)
        out.textEmb = E.concrete(
          this.model.frozen.embed({ ids: tids, lengths, count: B, maxTokens: L }),
          [B, L, this.model.frozen.dim],
          'float32',
        );
      else {
        out.textIds = E.concrete(tids, [B, L], 'int32');
        out.encValid = E.concrete(enc, [B, L], 'bool');
      }
      out.textValid = E.concrete(lm, [B, L], 'bool');
    }
    return out;
  }
}

/** The text of a clip without a caption: no token (its slot's keys all hidden from the LM). */
function blankText(model: TextPrefixLm): TextTokens {
  const L = (model.text ?? model.frozen)!.maxTokens;
  return { ids: new Int32Array(L), lengths: new Int32Array(1), count: 1, maxTokens: L };
}

/** The loss of a batch (graph code). */
export function lmBatchLoss(model: TextPrefixLm, b: LmBatch): Tensor {
  const text = b.textEmb ?? (b.textIds && model.text ? model.text.forward(b.textIds, b.encValid!) : undefined);
  return prefixLmLoss(model.lm, {
    ids: b.ids,
    prefixLength: b.prefixLength,
    text,
    textStart: TEXT_START,
    textValid: b.textValid,
  });
}

/**
 * A clip's task for an epoch: a weighted draw among the tasks its data allows, a pure function of (seed, epoch, clip).
 */
function taskChooser(mixture: Record<string, number>, seed: number) {
  const entries = Object.entries(mixture).filter(([, w]) => w > 0);
  check(entries.length > 0, 'the task mixture has no task with a positive weight');
  return (c: ClipRef, ordinal: number, epoch: number): string | undefined => {
    const allowed = entries.filter(([t]) => fits(t, c));
    // a clip that fits no task (no caption for t2v, no label for class) sits the epoch out
    if (allowed.length === 0) return undefined;
    const total = allowed.reduce((s, [, w]) => s + w, 0);
    let u = new SeededRng(hashSeed(seed, epoch, ordinal, 0x7a5c)).next() * total;
    for (const [t, w] of allowed) {
      u -= w;
      if (u < 0) return t;
    }
    return allowed[allowed.length - 1]![0];
  };
}

/** Rows of an image-phase batch (LmTrainOptions.imageBatch), never more than the corpus holds captioned clips. */
export function imageBatchSize(reader: ShardReader, o: Pick<LmTrainOptions, 'batchSize' | 'imageBatch'>): number {
  const frames = reader.index.clips[0]?.grid[0] ?? 1;
  const captioned = reader.index.clips.filter((c) => fits('t2i', c)).length;
  return Math.max(1, Math.min(o.imageBatch ?? o.batchSize * frames, captioned));
}

/**
 * Batches from batch index `start` on (a pure function of the index, so a resumed run continues exactly): the
 * first `imageSteps` are t2i batches (of `imageBatch` rows), then the mixture, epoch after epoch; each epoch redraws
 * every clip's task and cuts each length group into full batches (ShardReader.lengthBatches).
 */
export async function* lmBatches(
  reader: ShardReader,
  batcher: LmBatcher,
  o: LmTrainOptions,
  start: number,
): AsyncGenerator<LmBatch> {
  const imageSteps = o.imageSteps ?? 0;
  const choose = taskChooser(o.mixture, o.seed);
  const lengthKey = (task: string) => 2 * batcher.length(task) + (batcher.textSlot(task) ? 1 : 0);
  const keys = new Map<string, number>();
  const keyOf = (t: string) => {
    let k = keys.get(t);
    if (k === undefined) {
      k = lengthKey(t);
      keys.set(t, k);
    }
    return k;
  };
  let index = 0;
  const emit = (clips: ClipRef[], tasks: string[]) => {
    const data = reader.read(clips);
    return batcher.batch(
      data.map((d, i) => ({
        task: tasks[i]!,
        ids: d.ids,
        grid: d.grid,
        caption: d.caption,
        label: classOf(clips[i]!),
      })),
      hashSeed(o.seed, index, 0xd0),
    );
  };
  const imageBatch = imageBatchSize(reader, o);
  for (let epoch = 0; ; epoch++) {
    const image = index < imageSteps;
    // the image phase draws from captioned clips only; a clip with no task sits the epoch out
    const taskOf = (c: ClipRef, i: number) => (image ? (fits('t2i', c) ? 't2i' : undefined) : choose(c, i, epoch));
    const tasks = new Map(reader.index.clips.map((c, i) => [c.source, taskOf(c, i)]));
    const batchSize = image ? imageBatch : o.batchSize;
    const batches = [
      ...reader.lengthBatches({
        lengthOf: (c) => {
          const t = tasks.get(c.source);
          return t === undefined ? undefined : keyOf(t);
        },
        batchSize,
        seed: hashSeed(o.seed, epoch),
      }),
    ].filter((b) => b.clips.length === batchSize);
    if (batches.length === 0 && ![...tasks.values()].some((t) => t !== undefined))
      throw new VtokError(
        `no clip fits the tasks ${image ? 't2i (the image phase)' : Object.keys(o.mixture).join(', ')}: ` +
          (image ? 'no clip has a caption' : 'text tasks need captions, class needs class labels'),
        reader.dir,
      );
    check(
      batches.length > 0,
      `no length group has ${batchSize} clips: lower --batch${image ? ' or --image-batch' : ''}`,
      reader.dir,
    );
    for (const b of batches) {
      if (image && index >= imageSteps) break; // the curriculum ends mid-epoch: the mixture starts a new one
      if (index >= start)
        yield emit(
          b.clips,
          b.clips.map((c) => tasks.get(c.source)!),
        );
      index++;
    }
  }
}

/** One sample clip of a run: a task with its prompt or class label. */
export interface SampleRequest {
  task: string;
  prompt?: string;
  label?: number;
}

/**
 * The sample clips of a run: the first two captions (t2v), one unconditional clip and the first two class labels, as
 * far as the mixture has the task and the clips give the prompt.
 */
export function sampleRequests(clips: ClipRef[], mixture: Record<string, number>): SampleRequest[] {
  const out: SampleRequest[] = [];
  if (mixture.t2v)
    for (const c of clips.filter((c) => c.caption).slice(0, 2)) out.push({ task: 't2v', prompt: c.caption });
  if (mixture.uncond) out.push({ task: 'uncond' });
  if (mixture.class) {
    const labels = [...new Set(clips.map(classOf).filter((k) => k !== undefined))].slice(0, 2);
    for (const label of labels) out.push({ task: 'class', label });
  }
  return out;
}

export interface LmTaskOptions extends LmTrainOptions {
  /** Validation shards (per-task NLL); without them, no evaluation. */
  val?: ShardReader;
  /** For samples: the generator view of the model (its tokenizer) and what to generate (one clip each). */
  samples?: { generator: Generator; requests: SampleRequest[] };
}

export function prefixLmTask(model: TextPrefixLm, batcher: LmBatcher, o: LmTaskOptions): TrainTask<LmBatch> {
  const step = new TrainStep<LmBatch>(model, (b) => lmBatchLoss(model, b), {
    optimizer: new AdamW({ betas: [0.9, 0.95], weightDecay: 0.01 }),
    schedule: warmupCosine(o.lr, o.warmup ?? Math.max(1, Math.min(500, Math.round(o.steps / 20))), o.steps, o.lr / 10),
    clipNorm: 1,
    emaDecay: o.emaDecay,
  });
  const params = model.trainableParams().map(([, p]) => p);
  const evalLoss = E.jit(
    (w: Tensor[], b: LmBatch) =>
      bindParams(params, w, () => {
        model.eval();
        try {
          return lmBatchLoss(model, b);
        } finally {
          model.train();
        }
      }),
    { name: 'lm_eval' },
  );
  const inferenceWeights = () => step.ema ?? params.map((p) => p.value);

  // fixed validation batches per task: the first clips that fit the task
  const valBatches = new Map<string, LmBatch[]>();
  if (o.val) {
    const n = o.valClips ?? 16;
    for (const task of Object.keys(o.mixture)) {
      const refs = o.val.index.clips.filter((c) => fits(task, c)).slice(0, n);
      const bs = Math.min(o.batchSize, refs.length),
        list: LmBatch[] = [];
      for (let k = 0; k + bs <= refs.length && bs > 0; k += bs) {
        const part = refs.slice(k, k + bs),
          data = o.val.read(part);
        // validation scores the conditional model: no dropout
        list.push(
          new LmBatcher(model, batcher.layout, 0).batch(
            data.map((d, i) => ({ task, ids: d.ids, grid: d.grid, caption: d.caption, label: classOf(part[i]!) })),
            0,
          ),
        );
      }
      if (list.length) valBatches.set(task, list);
    }
  }

  return {
    modules: { model },
    steps: { model: step },
    iterate(batch) {
      return stepLog(step.run(batch));
    },
    evaluate: o.val
      ? () => {
          const out: Record<string, number> = {};
          let sum = 0;
          for (const [task, list] of valBatches) {
            const nll = list.reduce((s, b) => s + E.item(evalLoss(inferenceWeights(), b) as Tensor), 0) / list.length;
            out[`nll_${task}`] = nll;
            sum += nll;
          }
          out.nll = sum / Math.max(1, valBatches.size);
          return out;
        }
      : undefined,
    samples: o.samples
      ? async (dir, s) => {
          const { generator, requests } = o.samples!;
          // generate with the EMA weights, then put the training weights back
          const saved = params.map((p) => p.value);
          const weights = inferenceWeights();
          params.forEach((p, i) => {
            p.value = weights[i]!;
          });
          model.eval();
          try {
            const clips: Frame[][] = [];
            for (const [i, q] of requests.entries()) {
              const r = generate(generator, { ...q, seed: i, temperature: 1, topK: 64 });
              clips.push(tensorToClips(r.frames.data, r.frames.shape)[0]!);
            }
            const frames = clips[0]!.map((_, t) =>
              gridFrame(
                clips.map((c) => c[t]!),
                { columns: clips.length, gap: 2 },
              ),
            );
            for (const name of [`gen-${String(s).padStart(7, '0')}.gif`, 'gen-latest.gif'])
              await writeVideo(join(dir, name), frames, { fps: 4 });
          } finally {
            params.forEach((p, i) => {
              p.value = saved[i]!;
            });
            model.train();
          }
        }
      : undefined,
  };
}
