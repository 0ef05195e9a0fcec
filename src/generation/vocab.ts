import type { Tensor } from '../engine/core.js';
import { tokenizerIdentity, type TokenizerIdentity } from '../tokenizers/identity.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { VtokError, check } from '../util/errors.js';

/**
 * The unified vocabulary of the prefix LM (VideoPoet §3): one id space over every modality the model reads or
 * writes, laid out in blocks
 *
 *   [0, V)                          visual ids: exactly the visual tokenizer's vocabulary (MAGVIT-v2 up to 2^18)
 *   [V, V + levels·codesPerLevel)   audio ids: one block of `codesPerLevel` per RVQ level (empty until an audio
 *                                   tokenizer exists; the slot is in the layout so adding audio appends ids)
 *   then the special ids:           <pad> <bos> <eos>, the segment delimiters <bot_i> <eot_i> <bov_i> <eov_i>
 *                                   <boa_i> <eoa_i> <bov_o> <eov_o> <boa_o> <eoa_o>, one <task_NAME> per task,
 *                                   one <res_HxW> per output size, and <class_K> per class label when asked
 *                                   (`classNames` keeps the labels' names).
 *
 * Text never gets ids: it enters the LM as encoder embeddings in a text slot (paper §2), which holds <pad>. <pad>
 * also stands for a class label hidden by condition dropout (the null label of classifier-free guidance).
 *
 * The layout is JSON (saved in the LM's config) and remembers which tokenizer produced the visual ids: its kind,
 * vocabulary size and identity (sha256 over its config and weights). `checkTokenizer` refuses any other one.
 */

/** One output size the model generates: the pixel size that names its <res_HxW> token and its token grid. */
export interface OutputSize {
  /** `HxW` in pixels, the suffix of the <res_…> token. */
  key: string;
  frames: number;
  height: number;
  width: number;
  /** Token grid of a whole clip of `frames` frames ([t, h, w] for MAGVIT-v2, [n] for LARP). */
  grid: number[];
}

export interface VocabLayout {
  visual: { start: 0; size: number };
  audio: { start: number; levels: number; codesPerLevel: number };
  special: Record<string, number>;
  /** Total number of ids (the LM's embedding rows and logits). */
  size: number;
  tokenizer: TokenizerIdentity;
  /** Output sizes, one <res_…> token each. */
  outputs: OutputSize[];
  /** Names of the class labels, by label (<class_K> is `classNames[K]`); absent when the labels have no names. */
  classNames?: string[];
  /**
   * The text slot: which tasks' sequences hold one and its length (the text encoder's maxTokens). A task listed here
   * always has the slot, its keys hidden when there is no prompt (the layout condition dropout trains), so a prompt
   * never changes the layout. Absent in layouts built without a text encoder in view: a slot wherever text is given.
   */
  text?: TextSlots;
  /**
   * The latent frames frame prediction (and so each extension of a long video) was trained to condition on. Absent in
   * layouts saved before it was recorded, which were trained on 1 and 2.
   */
  condFrames?: number[];
}

export interface TextSlots {
  tasks: string[];
  length: number;
}

/** The delimiter tokens every layout has, in id order after <pad> <bos> <eos>. */
export const DELIMITERS = [
  '<bot_i>',
  '<eot_i>',
  '<bov_i>',
  '<eov_i>',
  '<boa_i>',
  '<eoa_i>',
  '<bov_o>',
  '<eov_o>',
  '<boa_o>',
  '<eoa_o>',
] as const;

export interface VocabOptions {
  tokenizer: TokenizerIdentity;
  /** Task names (each gets <task_NAME>). */
  tasks: string[];
  outputs: OutputSize[];
  /** Number of class labels (adds <class_0> … <class_{n−1}>); default: as many as `classNames`. */
  classes?: number;
  /** Their names, by label. */
  classNames?: string[];
  text?: TextSlots;
  condFrames?: number[];
  audio?: { levels: number; codesPerLevel: number };
}

/** Visual vocabularies beyond MAGVIT-v2's 18 bits are refused: the LM's softmax would not fit a sensible model. */
export const MAX_VISUAL_VOCAB = 2 ** 18;

export function buildVocabLayout(o: VocabOptions): VocabLayout {
  const v = o.tokenizer.vocabSize;
  check(
    Number.isInteger(v) && v > 0 && v <= MAX_VISUAL_VOCAB,
    `visual vocabulary must be an integer in [1, 2^18], got ${v}`,
  );
  const levels = o.audio?.levels ?? 0;
  const codes = o.audio?.codesPerLevel ?? 0;
  check(
    Number.isInteger(levels) && levels >= 0 && Number.isInteger(codes) && codes >= 0,
    `audio levels/codes must be non-negative integers, got ${levels}×${codes}`,
  );
  check(o.tasks.length > 0, 'a vocabulary needs at least one task');
  check(o.outputs.length > 0, 'a vocabulary needs at least one output size');
  const classes = o.classes ?? o.classNames?.length ?? 0;
  check(Number.isInteger(classes) && classes >= 0, `classes must be a non-negative integer, got ${classes}`);
  if (o.classNames) checkClassNames(o.classNames, classes);
  if (o.text) checkTextSlots(o.text, o.tasks);
  if (o.condFrames) checkCondFrames(o.condFrames);
  const names = [
    '<pad>',
    '<bos>',
    '<eos>',
    ...DELIMITERS,
    ...o.tasks.map(taskToken),
    ...o.outputs.map((s) => resToken(s.key)),
  ];
  for (let k = 0; k < classes; k++) names.push(classToken(k));
  const seen = new Set<string>();
  for (const n of names) {
    check(!seen.has(n), `duplicate special token ${n}`);
    seen.add(n);
  }
  const start = v + levels * codes;
  const special: Record<string, number> = {};
  names.forEach((n, i) => {
    special[n] = start + i;
  });
  return {
    visual: { start: 0, size: v },
    audio: { start: v, levels, codesPerLevel: codes },
    special,
    size: start + names.length,
    tokenizer: { ...o.tokenizer },
    outputs: o.outputs.map((s) => ({ ...s, grid: [...s.grid] })),
    ...(o.classNames && classes > 0 ? { classNames: [...o.classNames] } : {}),
    ...(o.text ? { text: { tasks: [...o.text.tasks], length: o.text.length } } : {}),
    ...(o.condFrames ? { condFrames: [...o.condFrames] } : {}),
  };
}

function checkCondFrames(c: unknown): void {
  check(
    Array.isArray(c) && c.length > 0 && c.every((k) => Number.isInteger(k) && k > 0) && new Set(c).size === c.length,
    `condFrames must be distinct positive integers, got ${JSON.stringify(c)}`,
  );
}

/** The latent frames frame prediction conditions on in this layout's model (1 and 2 where it does not say). */
export const trainedCondFrames = (layout: VocabLayout): number[] => layout.condFrames ?? [1, 2];

function checkTextSlots(t: TextSlots, tasks: string[]): void {
  check(
    !!t && Number.isInteger(t.length) && t.length > 0 && Array.isArray(t.tasks),
    'the text slot needs a positive integer length and a list of tasks',
  );
  for (const task of t.tasks) check(tasks.includes(task), `the text slot names task ${task}, which the layout lacks`);
}

/** Whether a task's sequences hold a text slot in this layout (undefined: the layout does not say). */
export const hasTextSlot = (layout: VocabLayout, task: string): boolean | undefined =>
  layout.text ? layout.text.tasks.includes(task) : undefined;

/** Task names of a layout (its <task_…> tokens). */
export const layoutTasks = (layout: VocabLayout): string[] =>
  Object.keys(layout.special)
    .filter((n) => n.startsWith('<task_'))
    .map((n) => n.slice(6, -1));

function checkClassNames(names: unknown, classes: number, source?: string): void {
  check(
    Array.isArray(names) && names.length === classes && names.every((n) => typeof n === 'string' && n.length > 0),
    `class names must be ${classes} non-empty strings, one per class label`,
    source,
  );
  check(new Set(names as string[]).size === classes, 'class names must be distinct', source);
}

/** Number of class labels (<class_K> tokens) of a layout. */
export const classCount = (layout: VocabLayout): number =>
  Object.keys(layout.special).filter((n) => n.startsWith('<class_')).length;

/**
 * A class label given by number or by name (`"7"` or `"7 up and down"`): its index, with an error listing the
 * model's classes when it has none of that number or name.
 */
export function classLabel(layout: VocabLayout, label: number | string): number {
  const n = classCount(layout);
  const names = layout.classNames;
  const list = () =>
    names ? `: ${names.map((c, k) => `${k} ${JSON.stringify(c)}`).join(', ')}` : ` (labels 0 to ${n - 1})`;
  if (n === 0) throw new VtokError('this model has no class labels (it was trained without the class task)');
  const byName = typeof label === 'string' ? names?.indexOf(label) : undefined;
  if (byName !== undefined && byName >= 0) return byName;
  const k = typeof label === 'number' ? label : /^\d+$/.test(label.trim()) ? Number(label.trim()) : NaN;
  if (!(Number.isInteger(k) && k >= 0 && k < n))
    throw new VtokError(`class label ${JSON.stringify(label)} is not one of the model's ${n} classes${list()}`);
  return k;
}

/**
 * The layout for a loaded tokenizer: its identity from config + weights, and one output size per clip size the
 * model generates (key `HxW`, grid from the tokenizer).
 */
export function layoutForTokenizer(
  tok: Tokenizer,
  weights: Map<string, Tensor>,
  o: {
    tasks: string[];
    sizes: { frames: number; height: number; width: number }[];
    classes?: number;
    classNames?: string[];
    text?: TextSlots;
    condFrames?: number[];
    audio?: VocabOptions['audio'];
  },
): VocabLayout {
  return buildVocabLayout({
    tokenizer: tokenizerIdentity(tok, weights),
    tasks: o.tasks,
    outputs: o.sizes.map((s) => ({
      key: `${s.height}x${s.width}`,
      ...s,
      grid: tok.grid([tok.channels ?? 3, s.frames, s.height, s.width]).shape,
    })),
    classes: o.classes,
    classNames: o.classNames,
    text: o.text,
    condFrames: o.condFrames,
    audio: o.audio,
  });
}

export const taskToken = (task: string): string => `<task_${task}>`;
export const resToken = (key: string): string => `<res_${key}>`;
export const classToken = (k: number): string => `<class_${k}>`;

/** The id of a special token, with an error naming the token when this layout lacks it. */
export function specialId(layout: VocabLayout, name: string): number {
  const id = layout.special[name];
  if (id === undefined) throw new VtokError(`the vocabulary has no ${name} token (a model built without it)`);
  return id;
}

/** Output size by <res> key, or the only one when `key` is absent. */
export function outputSize(layout: VocabLayout, key?: string): OutputSize {
  if (key === undefined) {
    check(
      layout.outputs.length === 1,
      () => `the model has several output sizes (${layout.outputs.map((s) => s.key).join(', ')}): name one`,
    );
    return layout.outputs[0]!;
  }
  const s = layout.outputs.find((x) => x.key === key);
  if (!s)
    throw new VtokError(
      `output size ${key} is not one of the model's (${layout.outputs.map((x) => x.key).join(', ')})`,
    );
  return s;
}

/** Name of the special token `id`, or undefined for visual/audio ids. */
export function specialName(layout: VocabLayout, id: number): string | undefined {
  for (const [n, i] of Object.entries(layout.special)) if (i === id) return n;
  return undefined;
}

export const layoutToJson = (layout: VocabLayout): string => JSON.stringify(layout);

/** Parses and validates a saved layout (`source` names the file in errors). */
export function layoutFromJson(text: string | unknown, source?: string): VocabLayout {
  let j: unknown = text;
  if (typeof text === 'string') {
    try {
      j = JSON.parse(text);
    } catch {
      throw new VtokError('vocabulary layout is not valid JSON', source);
    }
  }
  const l = j as VocabLayout;
  const bad = (what: string) => new VtokError(`vocabulary layout: ${what}`, source);
  if (!l || typeof l !== 'object') throw bad('not an object');
  if (l.visual?.start !== 0 || !Number.isInteger(l.visual?.size) || l.visual.size < 1)
    throw bad('visual must be { start: 0, size > 0 }');
  if (
    !l.audio ||
    l.audio.start !== l.visual.size ||
    !Number.isInteger(l.audio.levels) ||
    !Number.isInteger(l.audio.codesPerLevel)
  )
    throw bad('audio must start right after the visual ids');
  if (
    !l.tokenizer ||
    typeof l.tokenizer.kind !== 'string' ||
    typeof l.tokenizer.identity !== 'string' ||
    l.tokenizer.vocabSize !== l.visual.size
  ) {
    throw bad('tokenizer must have kind, identity and vocabSize equal to the visual size');
  }
  if (!Array.isArray(l.outputs) || l.outputs.length === 0) throw bad('no output sizes');
  if (!l.special || typeof l.special !== 'object') throw bad('no special tokens');
  for (const o of l.outputs) {
    if (
      !o ||
      typeof o.key !== 'string' ||
      !Array.isArray(o.grid) ||
      o.grid.length === 0 ||
      !o.grid.every((d) => Number.isInteger(d) && d > 0)
    )
      throw bad(`output size ${JSON.stringify(o?.key)} needs a key and a token grid of positive integers`);
    if (!(resToken(o.key) in l.special)) throw bad(`output size ${o.key} has no ${resToken(o.key)} token`);
  }
  const first = l.audio.start + l.audio.levels * l.audio.codesPerLevel;
  const ids = Object.values(l.special);
  if (new Set(ids).size !== ids.length || ids.some((i) => !Number.isInteger(i) || i < first || i >= l.size))
    throw bad(`special ids must be distinct and in [${first}, ${l.size})`);
  for (const n of ['<pad>', '<bos>', '<eos>', ...DELIMITERS]) if (!(n in l.special)) throw bad(`missing ${n}`);
  try {
    if (l.classNames !== undefined) checkClassNames(l.classNames, classCount(l));
    if (l.text !== undefined) checkTextSlots(l.text, layoutTasks(l));
    if (l.condFrames !== undefined) checkCondFrames(l.condFrames);
  } catch (e) {
    throw bad((e as Error).message);
  }
  return l;
}

/** Refuses a tokenizer other than the one the layout (the LM) was built with, naming both. */
export function checkTokenizer(layout: VocabLayout, tok: TokenizerIdentity, source?: string): void {
  const want = layout.tokenizer;
  const describe = (t: TokenizerIdentity) =>
    `${t.kind}, vocabulary ${t.vocabSize}, identity ${t.identity.slice(0, 16)}`;
  if (want.kind !== tok.kind || want.vocabSize !== tok.vocabSize || want.identity !== tok.identity) {
    throw new VtokError(
      `tokenizer mismatch: the model was trained with tokenizer (${describe(want)}) but got (${describe(tok)})`,
      source,
    );
  }
}
