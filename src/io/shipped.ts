import { fileURLToPath } from 'node:url';

/**
 * The models shipped with vtok in models/ (see README), each the default for one job, so that every command and
 * study takes its defaults from this one list. Paths are found from this file, so they hold wherever the package is
 * installed.
 */
export type ShippedRole = 'gray video' | 'colour video' | 'generator';

export interface ShippedModel {
  /** The folder under models/. */
  readonly name: string;
  readonly path: string;
  /** What it is, for help texts and messages. */
  readonly title: string;
  /** The `vtok train` kind that made it. */
  readonly kind: string;
  readonly defaultFor: ShippedRole;
}

const shipped = (name: string, title: string, kind: string, defaultFor: ShippedRole): ShippedModel => ({
  name,
  path: fileURLToPath(new URL(`../../../models/${name}`, import.meta.url)),
  title,
  kind,
  defaultFor,
});

export const SHIPPED_MODELS: readonly ShippedModel[] = [
  // a tiny MAGVIT-v2 trained on Moving MNIST
  shipped('magvit2-tiny', 'tiny MAGVIT-v2', 'magvit2', 'gray video'),
  // a MAGVIT-v2 trained on natural-looking clips (`vtok prepare natural`)
  shipped('magvit2-natural', 'natural-video MAGVIT-v2', 'magvit2', 'colour video'),
  // the prefix LM trained on captioned Moving MNIST with the tokens of magvit2-tiny
  shipped('t2v-mnist', 'text-to-video model', 'lm', 'generator'),
];

/** The shipped model that is the default for `role`. */
export function shippedModel(role: ShippedRole): ShippedModel {
  return SHIPPED_MODELS.find((m) => m.defaultFor === role)!;
}

/** The shipped tokenizers (every shipped model but the generator). */
export function shippedTokenizers(): ShippedModel[] {
  return SHIPPED_MODELS.filter((m) => m.defaultFor !== 'generator');
}
