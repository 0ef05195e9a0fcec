import { extendClips, sampleClips, temporalStride, tokenizeClips, type ClipPrompt } from '../../generation/generate.js';
import type { Generator } from '../../generation/model-dir.js';
import type { TextInput } from '../../generation/sampler.js';
import { buildSequence, framesForLatent, outputPlan, type TaskInputs } from '../../generation/tasks.js';
import type { TextTokens } from '../../generation/text/encoder.js';
import { outputSize } from '../../generation/vocab.js';
import type { ClipTensor } from '../../io/frame.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { check } from '../../util/errors.js';
import { runSteps } from '../../util/steps.js';
import { validationCorpus } from './checkpoint.js';

/** Sampling settings shared by every call of a study. */
export interface Sampling {
  temperature: number;
  topK?: number;
  topP?: number;
  /** Prompts per sampler call (rows; doubled under guidance). */
  batch: number;
}

/**
 * What the study needs from a text-to-video model: clips in [-1, 1] (N×C×T×H×W) from captions (or the captions'
 * layout with the text hidden), from the uncond task, from the first latent frame(s) of a clip, and one more step of
 * a long video. Every call is seeded and reproducible.
 */
export interface StudyGenerator {
  /** One generated clip, C×T×H×W. */
  readonly clip: { channels: 1 | 3; frames: number; height: number; width: number };
  /** The tasks the model was trained for. */
  readonly tasks: readonly string[];
  /** What chose the checkpoint (checkpoint.ts validationCorpus). */
  readonly validation: string | null | undefined;
  /** Frames of a clip that `condFrames` latent frames cover (the causal tokenizer's first frame is alone). */
  givenFrames(condFrames: number): number;
  /**
   * The t2v task from each prompt. `hideText`: the same sequences with every text key hidden — the layout of
   * condition dropout and of CFG's unconditional stream, which this draws (cfg must be 1).
   */
  textToVideo(prompts: string[], o: { cfg: number; seed: number; hideText?: boolean }): ClipTensor;
  /** The uncond task (its own layout: no text slot). */
  unconditional(count: number, o: { seed: number }): ClipTensor;
  /** Whole clips: the tokenizer's version of the given frames, then the predicted ones. */
  predictFrames(video: ClipTensor, o: { condFrames: number; seed: number }): ClipTensor;
  /** The videos one extension longer: the last latent frame(s) re-tokenized and continued (VideoPoet §9). */
  extend(video: ClipTensor, o: { condFrames: number; seed: number }): ClipTensor;
  /** The tokenizer's round trip of real clips (the ceiling of any generated frame). */
  reconstruct(clips: ClipTensor): ClipTensor;
}

/**
 * A StudyGenerator over a loaded model directory: generate's batch-level steps (`sampleClips`, `extendClips`) with
 * many prompts per sampler call, which a study of hundreds of clips needs. One prompt with the same seed draws
 * exactly what `generate` draws.
 */
export function studyGenerator(gen: Generator, sampling: Sampling): StudyGenerator {
  const { model, layout, tokenizer: tok } = gen;
  const { frames, height, width } = outputSize(layout);
  const channels = (tok.channels ?? 3) as 1 | 3;
  const stride = temporalStride(gen);
  const rows = Math.max(1, sampling.batch);
  const { temperature, topK, topP } = sampling;
  const batch = { temperature, topK, topP, rows, tokenizerBatch: rows };
  const run = (prompts: ClipPrompt[], o: { cfg: number; seed: number }) =>
    runSteps(sampleClips(gen, prompts, { ...batch, ...o })).frames;
  const prompt = (task: string, x: TaskInputs, text?: TextInput): ClipPrompt => ({
    sequence: buildSequence(layout, task, x),
    plan: outputPlan(layout, task, x),
    text,
  });

  return {
    clip: { channels, frames, height, width },
    tasks: Object.keys(layout.special)
      .filter((n) => n.startsWith('<task_'))
      .map((n) => n.slice(6, -1)),
    validation: validationCorpus(gen.config),
    givenFrames: (k) => framesForLatent(k, stride),
    textToVideo(prompts, o) {
      check(!o.hideText || o.cfg === 1, 'the text-hidden t2v set is drawn without guidance (cfg 1)');
      const tt = model.tokenize(prompts),
        Lt = tt.maxTokens,
        texts = model.embed(tt);
      const one = (i: number): TextTokens => ({
        ids: tt.ids.subarray(i * Lt, (i + 1) * Lt),
        lengths: tt.lengths.subarray(i, i + 1),
        count: 1,
        maxTokens: Lt,
      });
      // hidden: the sampler's default unconditional row (the prompt's embeddings, none of its keys valid)
      const text = (i: number): TextInput =>
        o.hideText ? { embeddings: texts[i]!.embeddings, valid: new Uint8Array(Lt) } : texts[i]!;
      return run(
        prompts.map((_, i) => prompt('t2v', { textTokens: one(i) }, text(i))),
        { cfg: o.cfg, seed: o.seed },
      );
    },
    unconditional(count, o) {
      return run(
        Array.from({ length: count }, () => prompt('uncond', {})),
        { cfg: 1, seed: o.seed },
      );
    },
    predictFrames(video, o) {
      const given = tokenizeClips(gen, video, rows);
      return run(
        given.map((v) => prompt('fp', { video: v, condFrames: o.condFrames })),
        { cfg: 1, seed: o.seed },
      );
    },
    extend(video, o) {
      return runSteps(extendClips(gen, video, { ...batch, condFrames: o.condFrames, seed: o.seed })).video;
    },
    reconstruct(clips) {
      const n = Math.min(rows, clips.shape[0]);
      return decodeTokens(tok, encodeClips(tok, clips, n), n);
    },
  };
}
