import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { Session, type DType, type HostTensor } from '../../engine/core.js';
import { VtokError, check } from '../../util/errors.js';
import type { FrozenTextEncoder, TextTokens } from './encoder.js';
import { JsonTokenizer } from './tokenize.js';

/**
 * A frozen text encoder from files (VideoPoet uses a frozen T5-XL encoder, paper §2): an ONNX model the user
 * exported, taking token ids [B, L] (and optionally an attention mask [B, L]) and giving hidden states
 * [B, L, dim], with the `tokenizer.json` it was trained with. It runs on the host through the engine's
 * onnxruntime Session, outside the LM's graph; the LM receives its output.
 *
 * On disk, a folder with `text-encoder.json`:
 *   { "kind": "onnx", "model": "encoder.onnx", "tokenizer": "tokenizer.json", "dim": 512, "maxTokens": 64 }
 * `dim` is the width of the output and `maxTokens` the text slot's length; both are checked against the model.
 */
export interface OnnxTextEncoderConfig {
  kind: 'onnx';
  model: string;
  tokenizer: string;
  dim: number;
  maxTokens: number;
}

export const TEXT_ENCODER_CONFIG = 'text-encoder.json';

interface IoInfo {
  name: string;
  elemType: number;
  dims: (number | undefined)[];
}

const ONNX_INT64 = 7;
const ONNX_INT32 = 6;
const ONNX_FLOAT = 1;
const ONNX_BOOL = 9;
const MASK_TYPES: Record<number, DType> = {
  [ONNX_INT64]: 'int64',
  [ONNX_INT32]: 'int32',
  [ONNX_FLOAT]: 'float32',
  [ONNX_BOOL]: 'bool',
};

function readIo(bytes: Uint8Array, file: string): { inputs: IoInfo[]; outputs: IoInfo[] } {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new VtokError(`not an ONNX model (${(e as Error).message.split('\n')[0]})`, file);
  }
  const g = model.graph;
  if (!g) throw new VtokError('not an ONNX model (no graph)', file);
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const info = (v: onnxProto.onnx.IValueInfoProto): IoInfo => {
    const t = v.type?.tensorType;
    const dims = (t?.shape?.dim ?? []).map((d) =>
      d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : undefined,
    );
    return { name: v.name ?? '', elemType: t?.elemType ?? 0, dims };
  };
  return {
    inputs: (g.input ?? []).filter((v) => !inits.has(v.name ?? '')).map(info),
    outputs: (g.output ?? []).map(info),
  };
}

export class OnnxTextEncoder implements FrozenTextEncoder {
  readonly kind = 'onnx';
  /** sha256 of the ONNX file and the tokenizer.json (recorded in the LM's config). */
  readonly sha256: string;
  private readonly session: Session;
  private readonly ids: IoInfo;
  private readonly mask?: IoInfo;
  /** Batch size the model was exported with, or undefined when it takes any. */
  private readonly batch?: number;

  private constructor(
    readonly dir: string,
    readonly config: OnnxTextEncoderConfig,
    readonly tokenizer: JsonTokenizer,
    private readonly modelPath: string,
    bytes: Uint8Array,
  ) {
    const { inputs, outputs } = readIo(bytes, modelPath);
    check(
      inputs.length === 1 || inputs.length === 2,
      `a text encoder takes token ids and optionally an attention mask; this model has ${inputs.length} inputs`,
      modelPath,
    );
    check(outputs.length >= 1, 'the model has no output', modelPath);
    this.ids = inputs[0]!;
    this.mask = inputs[1];
    check(
      this.ids.elemType === ONNX_INT64 || this.ids.elemType === ONNX_INT32,
      `input ${this.ids.name} must be int64 or int32 token ids`,
      modelPath,
    );
    if (this.mask)
      check(
        this.mask.elemType in MASK_TYPES,
        `attention mask input ${this.mask.name} has an unsupported element type ${this.mask.elemType}`,
        modelPath,
      );
    check(
      this.ids.dims.length === 2,
      `input ${this.ids.name} must be [batch, tokens], declared [${this.ids.dims.map((d) => d ?? '?')}]`,
      modelPath,
    );
    const L = this.ids.dims[1];
    check(
      L === undefined || L === config.maxTokens,
      `the model takes ${L} tokens, the config says maxTokens ${config.maxTokens}`,
      modelPath,
    );
    this.batch = this.ids.dims[0];
    const out = outputs[0]!;
    const D = out.dims[out.dims.length - 1];
    check(
      out.dims.length === 3,
      `output ${out.name} must be [batch, tokens, dim], declared [${out.dims.map((d) => d ?? '?')}]`,
      modelPath,
    );
    check(
      D === undefined || D === config.dim,
      `the encoder's output width is ${D}, the config says dim ${config.dim}`,
      modelPath,
    );
    this.session = new Session(
      bytes,
      inputs.map((i) => i.name),
      [out.name],
    );
    this.sha256 = createHash('sha256').update(bytes).update(readFileSync(tokenizer.path)).digest('hex');
  }

  /** Loads `dir/text-encoder.json` and the files it names. */
  static load(dir: string): OnnxTextEncoder {
    const cfgPath = join(dir, TEXT_ENCODER_CONFIG);
    if (!existsSync(cfgPath)) throw new VtokError(`no ${TEXT_ENCODER_CONFIG}: not a text encoder folder`, dir);
    let c: OnnxTextEncoderConfig;
    try {
      c = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch {
      throw new VtokError('not valid JSON', cfgPath);
    }
    check(c && c.kind === 'onnx', `kind must be "onnx", got ${JSON.stringify(c?.kind)}`, cfgPath);
    check(
      typeof c.model === 'string' && typeof c.tokenizer === 'string',
      'needs "model" and "tokenizer" file names',
      cfgPath,
    );
    check(
      Number.isInteger(c.dim) && c.dim > 0 && Number.isInteger(c.maxTokens) && c.maxTokens > 0,
      'needs positive integer "dim" and "maxTokens"',
      cfgPath,
    );
    const modelPath = join(dirname(cfgPath), c.model);
    if (!existsSync(modelPath)) throw new VtokError('no such ONNX text encoder file', modelPath);
    const tokenizer = JsonTokenizer.load(join(dirname(cfgPath), c.tokenizer));
    return new OnnxTextEncoder(dir, c, tokenizer, modelPath, readFileSync(modelPath));
  }

  get dim(): number {
    return this.config.dim;
  }
  get maxTokens(): number {
    return this.config.maxTokens;
  }

  tokenize(texts: string[]): TextTokens {
    return this.tokenizer.tokenize(texts, this.maxTokens);
  }

  /** Hidden states [count, maxTokens, dim]; positions past each prompt's length are the model's padding output. */
  embed(tokens: TextTokens): Float32Array {
    const { count, maxTokens: L } = tokens;
    check(L === this.maxTokens, `text tokens are ${L} wide, the encoder takes ${this.maxTokens}`);
    const D = this.dim;
    const out = new Float32Array(count * L * D);
    // A model exported with a fixed batch runs in chunks of that batch, the last one padded.
    const B = this.batch ?? count;
    for (let b0 = 0; b0 < count; b0 += B) {
      const n = Math.min(B, count - b0);
      const ids = this.ids.elemType === ONNX_INT64 ? new BigInt64Array(B * L) : new Int32Array(B * L);
      const mask = new Float32Array(B * L);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < L; j++) {
          const v = tokens.ids[(b0 + r) * L + j]!;
          if (ids instanceof BigInt64Array) ids[r * L + j] = BigInt(v);
          else ids[r * L + j] = v;
          mask[r * L + j] = j < tokens.lengths[b0 + r]! ? 1 : 0;
        }
      }
      const feeds: HostTensor[] = [
        { dtype: ids instanceof BigInt64Array ? 'int64' : 'int32', shape: [B, L], data: ids },
      ];
      if (this.mask) feeds.push(maskTensor(mask, MASK_TYPES[this.mask.elemType]!, [B, L]));
      let y: HostTensor;
      try {
        [y] = this.session.run(feeds) as [HostTensor];
      } catch (e) {
        throw new VtokError(`the text encoder failed to run: ${(e as Error).message.split('\n')[0]}`, this.modelPath);
      }
      check(
        y.shape.length === 3 && y.shape[0] === B && y.shape[1] === L && y.shape[2] === D,
        `the encoder's output is [${y.shape}], expected [${B}, ${L}, ${D}] (dim from the config)`,
        this.modelPath,
      );
      const data = y.data as Float32Array;
      for (let i = 0; i < n * L * D; i++)
        check(Number.isFinite(data[i]), 'the text encoder produced NaN or infinite values', this.modelPath);
      out.set(data.subarray(0, n * L * D), b0 * L * D);
    }
    return out;
  }

  dispose(): void {
    this.session.dispose();
  }
}

function maskTensor(mask: Float32Array, dtype: DType, shape: number[]): HostTensor {
  if (dtype === 'float32') return { dtype, shape, data: mask };
  if (dtype === 'int64') return { dtype, shape, data: BigInt64Array.from(mask, (v) => BigInt(v)) };
  if (dtype === 'int32') return { dtype, shape, data: Int32Array.from(mask) };
  return { dtype, shape, data: Uint8Array.from(mask) };
}
