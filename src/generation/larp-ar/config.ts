import type { SafeDType } from '../../io/safetensors.js';
import { VtokError } from '../../util/errors.js';

/**
 * LARP's autoregressive generator's config (hywang66/LARP `models/larp_ar.py`, `ModelArgs`) under the reference's
 * own names, as its released `config.json` files (huggingface_hub's mixin writes the dataclass as a flat dict) and
 * the golden files' `__metadata__.config` hold it. `parseLarpArConfig` fills the dataclass's defaults and refuses
 * what this port does not build (grouped-query attention, model types other than class_cond, a class embedding
 * without the null class), naming the field, rather than silently building another model.
 */
export interface LarpArConfig {
  dim: number;
  n_layer: number;
  n_head: number;
  /** null or n_head (grouped-query attention is not built). */
  n_kv_head: number | null;
  multiple_of: number;
  ffn_dim_multiplier: number | null;
  /** Unused by the model (its positions are absolute); kept as the reference has it. */
  rope_base: number;
  norm_eps: number;
  initializer_range: number;
  token_dropout_p: number;
  attn_dropout_p: number;
  resid_dropout_p: number;
  ffn_dropout_p: number;
  drop_path_rate: number;
  num_classes: number;
  class_dropout_prob: number;
  model_type: string;
  vocab_size: number;
  /** Condition positions: 1 (the class) for class_cond; the condition tokens + separator for frame prediction. */
  cls_token_num: number;
  max_batch_size: number;
  /** Tokens generated (LARP's tokens per clip). */
  max_seq_len: number;
  use_fixed_pe: boolean;
  frame_prediction: boolean;
}

/** ModelArgs' defaults (larp_ar.py). */
export const LARP_AR_DEFAULTS: LarpArConfig = {
  dim: 4096,
  n_layer: 32,
  n_head: 32,
  n_kv_head: null,
  multiple_of: 256,
  ffn_dim_multiplier: null,
  rope_base: 10000,
  norm_eps: 1e-5,
  initializer_range: 0.02,
  token_dropout_p: 0.1,
  attn_dropout_p: 0.0,
  resid_dropout_p: 0.1,
  ffn_dropout_p: 0.1,
  drop_path_rate: 0.0,
  num_classes: 101,
  class_dropout_prob: 0.1,
  model_type: 'class_cond',
  vocab_size: 8192,
  cls_token_num: 1,
  max_batch_size: 32,
  max_seq_len: 1024,
  use_fixed_pe: false,
  frame_prediction: false,
};

/**
 * The released LARP-L-long-AR (hywang66/LARP-L-long-AR: `llama-abs-LP`, 30 × 1280, 20 heads, SwiGLU 3584, trained
 * on UCF-101 with LARP-L-long's 1,024 tokens of 8,192 codes; 631,983,360 parameters), as the trainer fills in
 * `max_seq_len`/`vocab_size` from the tokenizer and the recipe sets the rest.
 */
export const LARP_L_LONG_AR: LarpArConfig = {
  ...LARP_AR_DEFAULTS,
  dim: 1280,
  n_layer: 30,
  n_head: 20,
  num_classes: 101,
  vocab_size: 8192,
  max_seq_len: 1024,
};

/** The released LARP-L-long-AR-FP (K600 frame prediction): condition = 1,024 tokens + the separator. */
export const LARP_L_LONG_AR_FP: LarpArConfig = {
  ...LARP_L_LONG_AR,
  cls_token_num: 1025,
  frame_prediction: true,
};

const NUMBERS = [
  'dim',
  'n_layer',
  'n_head',
  'multiple_of',
  'rope_base',
  'norm_eps',
  'initializer_range',
  'token_dropout_p',
  'attn_dropout_p',
  'resid_dropout_p',
  'ffn_dropout_p',
  'drop_path_rate',
  'num_classes',
  'class_dropout_prob',
  'vocab_size',
  'cls_token_num',
  'max_batch_size',
  'max_seq_len',
] as const;
const INTEGERS = new Set<string>([
  'dim',
  'n_layer',
  'n_head',
  'multiple_of',
  'num_classes',
  'vocab_size',
  'cls_token_num',
  'max_batch_size',
  'max_seq_len',
]);

/** Reads a reference config (a released config.json or a golden file's); every bad or unsupported field is named. */
export function parseLarpArConfig(raw: Record<string, unknown>, source?: string): LarpArConfig {
  const bad = (msg: string) => new VtokError(`LARP AR config: ${msg}`, source);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('expected a JSON object');
  const known = new Set(Object.keys(LARP_AR_DEFAULTS));
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length) throw bad(`unknown field(s) ${unknown.join(', ')} (ModelArgs has ${[...known].join(', ')})`);
  const c = { ...LARP_AR_DEFAULTS, ...raw } as LarpArConfig;
  for (const k of NUMBERS) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`"${k}" must be a number, got ${JSON.stringify(v)}`);
    if (INTEGERS.has(k) && !(Number.isInteger(v) && v > 0)) throw bad(`"${k}" must be a positive integer, got ${v}`);
  }
  for (const k of ['use_fixed_pe', 'frame_prediction'] as const) {
    if (typeof c[k] !== 'boolean') throw bad(`"${k}" must be true or false, got ${JSON.stringify(c[k])}`);
  }
  if (c.ffn_dim_multiplier !== null && !(typeof c.ffn_dim_multiplier === 'number' && c.ffn_dim_multiplier > 0))
    throw bad(`"ffn_dim_multiplier" must be a positive number or null, got ${JSON.stringify(c.ffn_dim_multiplier)}`);
  if (c.dim % c.n_head !== 0) throw bad(`dim ${c.dim} is not divisible by n_head ${c.n_head}`);
  if (c.n_kv_head !== null && c.n_kv_head !== c.n_head)
    throw bad(`n_kv_head ${c.n_kv_head} ≠ n_head ${c.n_head}: grouped-query attention is not supported`);
  if (c.model_type !== 'class_cond')
    throw bad(`model_type ${JSON.stringify(c.model_type)}: the reference builds only "class_cond"`);
  if (!c.frame_prediction) {
    if (c.cls_token_num !== 1)
      throw bad(`cls_token_num ${c.cls_token_num}: a class-conditional model has one class position`);
    if (!(c.class_dropout_prob > 0))
      throw bad('class_dropout_prob 0: the class embedding has no null class (nothing to guide with)');
  }
  return c;
}

/** SwiGLU hidden width, as FeedForward computes it: find_multiple(int(2·4·dim/3) [× multiplier], multiple_of). */
export function larpArHidden(c: LarpArConfig): number {
  let h = Math.floor((2 * 4 * c.dim) / 3);
  if (c.ffn_dim_multiplier !== null) h = Math.floor(c.ffn_dim_multiplier * h);
  return h % c.multiple_of === 0 ? h : h + c.multiple_of - (h % c.multiple_of);
}

/** Rows of the learned absolute positions (abs_pe): the condition positions and the generated tokens but the last. */
export const larpArPositions = (c: LarpArConfig): number => c.max_seq_len + c.cls_token_num - 1;

/**
 * Every weight of a config by its reference name and shape, in the module's order, computed without building the
 * model (a 632 M-parameter config is checked without allocating it).
 */
export function larpArWeightShapes(c: LarpArConfig): Map<string, number[]> {
  const d = c.dim,
    h = larpArHidden(c);
  const out = new Map<string, number[]>();
  out.set('tok_embeddings.weight', [c.vocab_size + (c.frame_prediction ? 1 : 0), d]);
  if (!c.frame_prediction) out.set('cls_embedding.embedding_table.weight', [c.num_classes + 1, d]);
  out.set('abs_pe', [1, larpArPositions(c), d]);
  for (let l = 0; l < c.n_layer; l++) {
    const p = `layers.${l}`;
    out.set(`${p}.attention_norm.weight`, [d]);
    out.set(`${p}.attention.wqkv.weight`, [3 * d, d]);
    out.set(`${p}.attention.wo.weight`, [d, d]);
    out.set(`${p}.ffn_norm.weight`, [d]);
    out.set(`${p}.feed_forward.w1.weight`, [h, d]);
    out.set(`${p}.feed_forward.w3.weight`, [h, d]);
    out.set(`${p}.feed_forward.w2.weight`, [d, h]);
  }
  out.set('norm.weight', [d]);
  out.set('output.weight', [c.vocab_size, d]);
  return out;
}

/** Number of parameters of a config (abs_pe included: learned, or a buffer under use_fixed_pe). */
export function larpArParameterCount(c: LarpArConfig): number {
  let n = 0;
  for (const s of larpArWeightShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** A weight as a file lists it: name, dtype and shape (a safetensors header). */
export interface WeightEntry {
  dtype: SafeDType | string;
  shape: readonly number[];
}

/** What is wrong between a config and a file's weights; empty when they fit. */
export interface WeightProblems {
  missing: string[];
  unexpected: string[];
  /** "name: file has F32[…], the config needs […]" */
  misshaped: string[];
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Compares a file's weights (names, dtypes, shapes: its header) with what a config needs, without reading them. */
export function checkLarpArWeights(c: LarpArConfig, file: Map<string, WeightEntry>): WeightProblems {
  const want = larpArWeightShapes(c);
  const missing = [...want.keys()].filter((k) => !file.has(k));
  const unexpected = [...file.keys()].filter((k) => !want.has(k));
  const misshaped: string[] = [];
  for (const [k, s] of want) {
    const e = file.get(k);
    if (!e) continue;
    if (e.shape.join() !== s.join() || !FLOAT_DTYPES.has(e.dtype))
      misshaped.push(`${k}: the file has ${e.dtype}[${e.shape}], the config needs float[${s}]`);
  }
  return { missing, unexpected, misshaped };
}

/** One message for weight problems (lists cut at 8 names), or null when there are none. */
export function weightProblemMessage(p: WeightProblems): string | null {
  const list = (xs: string[]) =>
    xs.length > 8 ? `${xs.slice(0, 8).join(', ')}, … (${xs.length - 8} more)` : xs.join(', ');
  const parts: string[] = [];
  if (p.missing.length) parts.push(`missing ${p.missing.length}: ${list(p.missing)}`);
  if (p.unexpected.length) parts.push(`unexpected ${p.unexpected.length}: ${list(p.unexpected)}`);
  if (p.misshaped.length) parts.push(`mis-shaped ${p.misshaped.length}: ${list(p.misshaped)}`);
  return parts.length ? `the weights do not fit the config (${parts.join('; ')})` : null;
}
