import { VtokError, check } from '../util/errors.js';
import { specialId, specialName, type VocabLayout } from './vocab.js';

/**
 * Token sequences of the prefix LM (VideoPoet §4–5). Every task lays its sequence out the same way:
 *
 *   <bos> <task_X> [<class_K>] [<bot_i> text slot <eot_i>] [<bov_i> visual ids <eov_i>] <res_HxW> <bov_o>   = prefix
 *   visual output ids … <eov_o> <eos>                                                                         = output
 *
 * The prefix (positions < P) is attended bidirectionally and never scored; the output is causal and scored,
 * closing tokens included (at sampling time they are forced, not sampled). The text slot holds <pad> ids; the
 * LM puts the text encoder's embeddings there.
 */

export interface Segment {
  kind: 'special' | 'text' | 'visual' | 'audio';
  role: 'input' | 'output';
  start: number;
  length: number;
  grid?: number[];
}
export interface LmSequence {
  task: string;
  ids: Int32Array; // S ids; the text slot holds <pad>
  prefixLength: number; // P: positions < P form the bidirectional prefix and are never scored
  text: { start: number; length: number } | null; // where the text embeddings go (length = encoder.maxTokens)
  segments: Segment[];
}
/** What the sampler must produce after the prefix: sampled ranges and forced ids, in order. */
export type OutputStep = { sample: { lo: number; hi: number }; count: number } | { force: number };

/** Visual token ids of a clip with their grid ([t, h, w] or [n]), row-major. */
export interface VisualTokens {
  ids: Int32Array;
  grid: number[];
}

/** What a sequence is made of, in layout order; a task's builder decides which parts it has. */
export interface Composition {
  task: string;
  /** A class label token <class_K>. */
  label?: number;
  /** Length of the text slot (the text encoder's maxTokens). */
  textLength?: number;
  visualInput?: VisualTokens;
  /** <res_…> key of the output size. */
  res: string;
  /** Grid of the output clip. */
  outputGrid: number[];
  /** The output ids (training); absent when only the prefix is built (sampling). */
  output?: VisualTokens;
}

/** Lays a composition out as ids, prefix length, text slot and segments. */
export function composeSequence(layout: VocabLayout, c: Composition): LmSequence {
  const ids: number[] = [];
  const segments: Segment[] = [];
  const sp = (name: string) => ids.push(specialId(layout, name));
  sp('<bos>');
  sp(`<task_${c.task}>`);
  if (c.label !== undefined) {
    segments.push({ kind: 'special', role: 'input', start: ids.length, length: 1 });
    sp(`<class_${c.label}>`);
  }
  let text: LmSequence['text'] = null;
  if (c.textLength !== undefined) {
    check(
      Number.isInteger(c.textLength) && c.textLength > 0,
      `text slot length must be a positive integer, got ${c.textLength}`,
    );
    sp('<bot_i>');
    text = { start: ids.length, length: c.textLength };
    segments.push({ kind: 'text', role: 'input', start: ids.length, length: c.textLength });
    const pad = specialId(layout, '<pad>');
    for (let i = 0; i < c.textLength; i++) ids.push(pad);
    sp('<eot_i>');
  }
  if (c.visualInput) {
    sp('<bov_i>');
    segments.push({
      kind: 'visual',
      role: 'input',
      start: ids.length,
      length: c.visualInput.ids.length,
      grid: [...c.visualInput.grid],
    });
    pushVisual(layout, ids, c.visualInput, 'the input video/image');
    sp('<eov_i>');
  }
  sp(`<res_${c.res}>`);
  sp('<bov_o>');
  const prefixLength = ids.length;
  const outLength = gridSize(c.outputGrid);
  segments.push({ kind: 'visual', role: 'output', start: ids.length, length: outLength, grid: [...c.outputGrid] });
  if (c.output) {
    check(
      sameGrid(c.output.grid, c.outputGrid),
      () => `the output clip has token grid [${c.output!.grid}], the task needs [${c.outputGrid}]`,
    );
    pushVisual(layout, ids, c.output, 'the output clip');
    sp('<eov_o>');
    sp('<eos>');
  }
  return { task: c.task, ids: Int32Array.from(ids), prefixLength, text, segments };
}

/**
 * The sequence with its class label hidden: <pad> in place of <class_K>, the null label that class condition dropout
 * trains and classifier-free guidance's unconditional prompt holds. A sequence without a label is returned as it is.
 */
export function hideLabel(layout: VocabLayout, seq: LmSequence): LmSequence {
  const at = seq.segments.find((g) => g.kind === 'special' && g.role === 'input')?.start;
  if (at === undefined) return seq;
  const ids = seq.ids.slice();
  ids[at] = specialId(layout, '<pad>');
  return { ...seq, ids };
}

/** The sampler's plan after the prefix: the output's visual ids, then the forced closing tokens. */
export function visualOutputPlan(layout: VocabLayout, outputGrid: number[]): OutputStep[] {
  return [
    { sample: { lo: layout.visual.start, hi: layout.visual.start + layout.visual.size }, count: gridSize(outputGrid) },
    { force: specialId(layout, '<eov_o>') },
    { force: specialId(layout, '<eos>') },
  ];
}

function pushVisual(layout: VocabLayout, ids: number[], v: VisualTokens, what: string): void {
  check(v.ids.length === gridSize(v.grid), () => `${what}: ${v.ids.length} ids for token grid [${v.grid}]`);
  const hi = layout.visual.start + layout.visual.size;
  for (const id of v.ids) {
    if (!(id >= layout.visual.start && id < hi))
      throw new VtokError(`${what}: token id ${id} is outside the visual vocabulary [0, ${hi})`);
    ids.push(id);
  }
}

export const gridSize = (grid: readonly number[]): number => grid.reduce((a, b) => a * b, 1);
export const sameGrid = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Latent frames [from, to) of a [t, h, w] clip. */
export function latentFrames(v: VisualTokens, from: number, to: number): VisualTokens {
  check(v.grid.length === 3, () => `latent frames need a [t, h, w] token grid, got [${v.grid}]`);
  const [t, h, w] = v.grid as [number, number, number];
  check(from >= 0 && from < to && to <= t, () => `latent frames [${from}, ${to}) are outside a clip of ${t}`);
  return { ids: v.ids.slice(from * h * w, to * h * w), grid: [to - from, h, w] };
}

/** Concatenates [t, h, w] clips along time (e.g. a conditioning frame and the generated rest). */
export function concatFrames(parts: VisualTokens[]): VisualTokens {
  check(parts.length > 0, 'nothing to concatenate');
  const [, h, w] = parts[0]!.grid;
  for (const p of parts)
    check(
      p.grid.length === 3 && p.grid[1] === h && p.grid[2] === w,
      () => `cannot join token grids [${parts.map((q) => `[${q.grid}]`).join(', ')}] along time`,
    );
  const ids = new Int32Array(parts.reduce((n, p) => n + p.ids.length, 0));
  let o = 0;
  for (const p of parts) {
    ids.set(p.ids, o);
    o += p.ids.length;
  }
  return { ids, grid: [parts.reduce((n, p) => n + p.grid[0]!, 0), h!, w!] };
}

export interface ParsedSequence {
  task: string;
  res: string;
  label?: number;
  text: { start: number; length: number } | null;
  prefixLength: number;
  /** Content segments with their ids (visual/audio/label), in order. */
  segments: (Segment & { ids: Int32Array })[];
}

/**
 * Reads a whole sequence (prefix + generated output) back into segments for decoding. Works for any task: it
 * follows the delimiters. Visual grids come from the <res> token's output size: an input block is whole latent
 * frames of that size; the output block is checked against nothing but its frame size (tasks know its length).
 */
export function parseSequence(layout: VocabLayout, ids: Int32Array): ParsedSequence {
  let i = 0;
  const name = (k: number) => specialName(layout, ids[k]!);
  const fail = (what: string): never => {
    throw new VtokError(`cannot parse the generated sequence at position ${i}: ${what}`);
  };
  const expect = (tok: string) => {
    if (name(i) !== tok) fail(`expected ${tok}, found ${name(i) ?? `id ${ids[i]}`}`);
    i++;
  };
  const until = (close: string): Int32Array => {
    const start = i;
    while (i < ids.length && name(i) !== close) i++;
    if (i >= ids.length) fail(`no closing ${close}`);
    const out = ids.slice(start, i);
    i++;
    return out;
  };
  expect('<bos>');
  const tt = name(i);
  if (!tt?.startsWith('<task_')) fail('expected a <task_…> token');
  const task = tt!.slice(6, -1);
  i++;
  const segments: ParsedSequence['segments'] = [];
  let label: number | undefined;
  const cls = name(i);
  if (cls?.startsWith('<class_')) {
    label = Number(cls.slice(7, -1));
    segments.push({ kind: 'special', role: 'input', start: i, length: 1, ids: ids.slice(i, i + 1) });
    i++;
  }
  let text: ParsedSequence['text'] = null;
  if (name(i) === '<bot_i>') {
    i++;
    const start = i;
    const slot = until('<eot_i>');
    text = { start, length: slot.length };
    segments.push({ kind: 'text', role: 'input', start, length: slot.length, ids: slot });
  }
  let visualIn: { start: number; ids: Int32Array } | undefined;
  if (name(i) === '<bov_i>') {
    i++;
    const start = i;
    visualIn = { start, ids: until('<eov_i>') };
  }
  const rt = name(i);
  if (!rt?.startsWith('<res_')) fail('expected a <res_…> token');
  const res = rt!.slice(5, -1);
  i++;
  const size = layout.outputs.find((s) => s.key === res);
  if (!size) fail(`unknown output size ${res}`);
  expect('<bov_o>');
  const prefixLength = i;
  const outStart = i;
  const out = until('<eov_o>');
  expect('<eos>');
  if (i !== ids.length) fail(`${ids.length - i} ids after <eos>`);
  const gridOf = (v: Int32Array, what: string): number[] => {
    for (const id of v)
      if (!(id >= layout.visual.start && id < layout.visual.start + layout.visual.size))
        fail(`${what} holds id ${id}, not a visual id`);
    if (size!.grid.length !== 3) return [v.length];
    const frame = size!.grid[1]! * size!.grid[2]!;
    if (v.length === 0 || v.length % frame !== 0)
      fail(`${what} has ${v.length} ids, not whole latent frames of ${size!.grid[1]}×${size!.grid[2]}`);
    return [v.length / frame, size!.grid[1]!, size!.grid[2]!];
  };
  if (visualIn)
    segments.push({
      kind: 'visual',
      role: 'input',
      start: visualIn.start,
      length: visualIn.ids.length,
      grid: gridOf(visualIn.ids, 'the input video'),
      ids: visualIn.ids,
    });
  segments.push({
    kind: 'visual',
    role: 'output',
    start: outStart,
    length: out.length,
    grid: gridOf(out, 'the output video'),
    ids: out,
  });
  return { task, res, label, text, prefixLength, segments };
}
