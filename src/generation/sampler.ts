import { check } from '../util/errors.js';
import { runSteps, type Steps } from '../util/steps.js';
import { Rng } from '../util/rng.js';
import { guide, sampleRows, type SamplingOptions } from '../util/sampling.js';
import type { LogitRange } from './lm-decoder.js';
import { PrefixLmDecoder } from './prefix-lm/decoder.js';
import type { PrefixLm } from './prefix-lm/model.js';
import type { OutputStep } from './sequence.js';
export type { OutputStep };

/**
 * Sampling from the prefix LM with the KV cache: the prefix is run once (prefill), then one decode step per output
 * token. What is produced follows the task's plan: each segment samples only ids legal there (the logits are
 * computed for that id range only, so nothing outside it can be drawn), and closing tokens are emitted as given,
 * never sampled. Classifier-free guidance runs the conditional and unconditional streams as one batch
 * (logits = u + s·(c − u)). Guidance, temperature, top-k, top-p and the draw are util/sampling's, seeded here.
 */

/** A sequence's prefix as the sequence builders lay it out (generation/sequence's LmSequence fits). */
export interface PrefixSequence {
  ids: Int32Array;
  prefixLength: number;
  text: { start: number; length: number } | null;
}

/** A prompt's text embeddings [Lt, textDim] and which of its positions are valid [Lt]. */
export interface TextInput {
  embeddings: Float32Array;
  valid: Uint8Array;
}

/** A text slot with every key hidden: a prompt-less request of a task whose sequences hold a slot. */
export function hiddenText(length: number, textDim: number): TextInput {
  return { embeddings: new Float32Array(length * textDim), valid: new Uint8Array(length) };
}

export interface SampleProgress {
  done: number;
  total: number;
  tokensPerSecond: number;
}

export interface SampleOptions extends SamplingOptions {
  /** One prompt, or several with the same layout (each gives `samples` rows). */
  prefix: PrefixSequence | PrefixSequence[];
  /** Text embeddings per prompt (models with text and a text slot). */
  text?: TextInput | TextInput[];
  plan: OutputStep[];
  /** Rows per prompt (default 1). */
  samples?: number;
  seed?: number;
  /** Classifier-free guidance scale (default 1: no unconditional stream). */
  cfgScale?: number;
  /** The unconditional prompts (same layout); default: the prompts with every text key invalid. */
  uncond?: PrefixSequence | PrefixSequence[];
  onProgress?: (p: SampleProgress) => void;
  /** A decoder to reuse (its compiled programs) across calls; default: a new one per call. */
  decoder?: PrefixLmDecoder;
}

/** Output length of a plan (sampled and forced ids). */
export const planLength = (plan: OutputStep[]): number => plan.reduce((n, s) => n + ('force' in s ? 1 : s.count), 0);

const CAPACITY_BUCKET = 64;

/** Samples the plan's output for every prompt × sample; returns ids row-major [prompts·samples, planLength]. */
export function sample(model: PrefixLm, o: SampleOptions): Int32Array {
  return runSteps(sampleSteps(model, o));
}

/**
 * `sample` as steps: the generator yields after every output position, so a caller can hand the event loop a turn
 * (signals, progress) between them (`runStepsAsync`); returning it early releases the decoder.
 */
export function* sampleSteps(model: PrefixLm, o: SampleOptions): Steps<Int32Array> {
  const V = model.cfg.vocabSize;
  const prompts = [o.prefix].flat();
  const texts = o.text === undefined ? null : [o.text].flat();
  const samples = o.samples ?? 1,
    scale = o.cfgScale ?? 1;
  check(prompts.length > 0, 'sample: no prompt');
  check(Number.isInteger(samples) && samples > 0, `sample: samples must be a positive integer, got ${samples}`);
  check(Number.isFinite(scale), `sample: cfgScale must be a number, got ${scale}`);
  const P = prompts[0]!.prefixLength,
    layout = prompts[0]!.text;
  for (const [i, p] of prompts.entries()) {
    check(
      p.prefixLength === P && p.ids.length >= P && JSON.stringify(p.text) === JSON.stringify(layout),
      `sample: prompt ${i} has a different layout from prompt 0 (prefix ${p.prefixLength} vs ${P})`,
    );
    for (let j = 0; j < P; j++)
      check(
        p.ids[j]! >= 0 && p.ids[j]! < V,
        `sample: prompt ${i} id ${p.ids[j]} at ${j} is outside the vocabulary [0, ${V})`,
      );
  }
  if (layout) {
    check(
      texts !== null && texts.length === prompts.length,
      `sample: the layout has a text slot; give text embeddings for each of the ${prompts.length} prompt(s)`,
    );
    const td = model.cfg.textDim ?? 0;
    for (const [i, t] of texts!.entries())
      check(
        t.embeddings.length === layout.length * td && t.valid.length === layout.length,
        `sample: text ${i} must be [${layout.length}, ${td}] embeddings with ${layout.length} valid flags`,
      );
  }
  const total = planLength(o.plan);
  check(total > 0, 'sample: the plan produces nothing');
  for (const s of o.plan) {
    if ('force' in s)
      check(
        Number.isInteger(s.force) && s.force >= 0 && s.force < V,
        `sample: forced id ${s.force} is outside the vocabulary`,
      );
    else
      check(
        Number.isInteger(s.count) && s.count > 0 && s.sample.lo >= 0 && s.sample.lo < s.sample.hi && s.sample.hi <= V,
        `sample: bad plan step ${JSON.stringify(s)}`,
      );
  }
  const guided = scale !== 1;
  let unconds: PrefixSequence[] = prompts;
  if (guided && o.uncond) {
    unconds = [o.uncond].flat();
    check(
      unconds.length === prompts.length && unconds.every((u) => u.prefixLength === P),
      `sample: give one unconditional prompt with prefix ${P} per prompt`,
    );
  } else if (guided) {
    check(layout !== null, 'sample: guidance without a text slot needs explicit unconditional prompts (uncond)');
  }

  // rows: prompt-major samples, then (guided) the same rows' unconditional stream
  const R = prompts.length * samples,
    B = guided ? 2 * R : R;
  const ids = new Int32Array(B * P);
  const Lt = layout?.length ?? 0,
    td = model.cfg.textDim ?? 0;
  const emb = new Float32Array(B * Lt * td),
    valid = new Uint8Array(B * Lt);
  for (let r = 0; r < B; r++) {
    const k = Math.floor((r % R) / samples),
      uncondRow = r >= R;
    const src = uncondRow ? unconds[k]! : prompts[k]!;
    ids.set(src.ids.subarray(0, P), r * P);
    if (layout) {
      emb.set(texts![k]!.embeddings, r * Lt * td);
      // the default unconditional stream hides every text key (condition dropout's layout)
      if (!(uncondRow && !o.uncond)) valid.set(texts![k]!.valid, r * Lt);
    }
  }

  const dec = o.decoder ?? new PrefixLmDecoder(model);
  const capacity = Math.min(model.cfg.maxLength, Math.ceil((P + total) / CAPACITY_BUCKET) * CAPACITY_BUCKET);
  check(
    P + total - 1 <= model.cfg.maxLength,
    `sample: prefix ${P} + ${total} output ids exceed the model's maxLength ${model.cfg.maxLength}`,
  );
  const rng = new Rng(o.seed ?? 0);
  const out = new Int32Array(R * total);
  type Step = { range: LogitRange } | { force: number };
  const steps = o.plan.flatMap((s): Step[] =>
    'force' in s ? [{ force: s.force }] : Array.from({ length: s.count }, () => ({ range: s.sample })),
  );
  const firstRange = steps.find((s): s is { range: LogitRange } => 'range' in s)?.range ?? { lo: 0, hi: 1 };
  try {
    const t0 = performance.now();
    const { cache, logits: first } = dec.prefill(
      { ids, batch: B, text: layout ? { embeddings: emb, length: Lt, start: layout.start, valid } : undefined },
      capacity,
      firstRange,
    );
    let logits = first,
      range = firstRange;
    const fed = new Int32Array(B);
    for (let s = 0; s < steps.length; s++) {
      const st = steps[s]!;
      if ('force' in st) fed.fill(st.force);
      else {
        const n = range.hi - range.lo;
        const rowLogits = guided
          ? guide(logits.slice(0, R * n), logits.subarray(R * n, 2 * R * n), scale)
          : logits.slice(0, R * n);
        const drawn = sampleRows(rowLogits, R, n, rng, o);
        for (let r = 0; r < B; r++) fed[r] = range.lo + drawn[r % R]!;
      }
      for (let r = 0; r < R; r++) out[r * total + s] = fed[r]!;
      if (s + 1 < steps.length) {
        // the next logits are needed over the next sampled segment's range (a forced step keeps the current one)
        const next = steps[s + 1]!;
        if ('range' in next) range = next.range;
        logits = dec.step(cache, fed, range);
      }
      o.onProgress?.({ done: s + 1, total, tokensPerSecond: ((s + 1) * R) / ((performance.now() - t0) / 1000) });
      yield;
    }
    return out;
  } finally {
    if (!o.decoder) dec.dispose();
  }
}
