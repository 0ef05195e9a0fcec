import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { INDEX_FILE, readIndex } from '../../corpus/shards.js';
import type { LmDirConfig } from '../../generation/model-dir.js';
import { VtokError } from '../../util/errors.js';
import { HELD_SPLITS, type HeldSplit } from './data.js';

/**
 * What chose the best checkpoint of a model directory (the one it loads): the corpus description of its validation
 * shards (`vtok train lm --val-shards`, kept by `vtok pack`), null when it was trained without them (the latest
 * checkpoint), undefined when nothing says (a directory packed before vtok recorded it, or a run whose validation
 * shards have moved).
 */
export function validationCorpus(config: LmDirConfig): string | null | undefined {
  if (typeof config.validation === 'string' || config.validation === null) return config.validation;
  const val = (config.data as { val?: unknown } | undefined)?.val;
  if (val === null) return null;
  if (typeof val !== 'string' || !existsSync(join(val, INDEX_FILE))) return undefined;
  try {
    return readIndex(val).corpus;
  } catch {
    return undefined;
  }
}

/** The captioned Moving MNIST split of a corpus description (tokenize's JSON of the data set and options). */
function captionedSplit(corpus: string): string | undefined {
  try {
    const j = JSON.parse(corpus);
    return j?.kind === 'captioned-mnist' && typeof j.split === 'string' ? j.split : undefined;
  } catch {
    return undefined;
  }
}

/** How the report says what chose the checkpoint. */
export function describeCheckpoint(validation: string | null | undefined): string {
  if (validation === undefined) return 'what chose it is not recorded (a model directory packed before vtok kept it)';
  if (validation === null) return 'trained without validation shards, so the latest checkpoint';
  const split = captionedSplit(validation);
  return split
    ? `chosen by the lowest validation NLL on captioned Moving MNIST split ${split} (${validation})`
    : `chosen by the lowest validation NLL on ${validation}`;
}

/**
 * Refuses a model whose best checkpoint was chosen on a split the study evaluates: its figures would be chosen on
 * the clips they report.
 */
export function checkCheckpoint(validation: string | null | undefined, model: string): void {
  const split = validation ? captionedSplit(validation) : undefined;
  if (split !== undefined && HELD_SPLITS.includes(split as HeldSplit))
    throw new VtokError(
      `the model's best checkpoint was chosen on captioned Moving MNIST split ${split}, which this study ` +
        'evaluates; train it with --val-shards from `vtok tokenize --data captioned-mnist --split val`',
      model,
    );
}
