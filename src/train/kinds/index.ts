import { VtokError } from '../../util/errors.js';
import { larpTrainer } from './larp.js';
import { magvit2Trainer } from './magvit2.js';
import type { TokenizerTrainer } from './types.js';

/** Trainable tokenizer kinds for `vtok train <kind>`. */
const trainers: TokenizerTrainer[] = [magvit2Trainer, larpTrainer];

export function trainerFor(kind: string): TokenizerTrainer {
  const t = trainers.find((x) => x.kind === kind);
  if (!t) throw new VtokError(`cannot train "${kind}" (known: ${trainers.map((x) => x.kind).join(', ')})`);
  return t;
}

export function registerTrainer(t: TokenizerTrainer): void {
  trainers.push(t);
}
