import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import type { Tensor } from '../../../src/engine/index.js';
import { Embedding, Linear, Module, RMSNorm } from '../../../src/nn/index.js';
import { TEXT_ENCODER_CONFIG } from '../../../src/generation/text/onnx.js';

/** Test fixtures: a tiny T5-shaped ONNX text encoder and its tokenizer.json, written by the tests themselves. */

/** A T5-style Unigram tokenizer.json over the captions' words; T5's post-processor appends </s>. */
export function writeTokenizerJson(path: string): void {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const words = ['the', 'digit', 'moves', 'left', 'and', 'right', 'up', 'down', ...'0123456789'];
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: {
      type: 'Unigram',
      unk_id: 2,
      vocab: [
        ['<pad>', 0],
        ['</s>', 0],
        ['<unk>', 0],
        ['▁', -2],
        ...words.map((w) => [`▁${w}`, -1]),
        ...'0123456789'.split('').map((d) => [d, -3]),
      ],
    },
  };
  writeFileSync(path, JSON.stringify(json));
}

export const VOCAB = 4 + 18 + 10;

/** One T5 encoder layer: pre-RMSNorm self-attention (no biases, padding keys masked) and a ReLU MLP, residuals. */
class T5Layer extends Module {
  norm1 = new RMSNorm(16);
  q = new Linear(16, 16, { bias: false });
  k = new Linear(16, 16, { bias: false });
  v = new Linear(16, 16, { bias: false });
  o = new Linear(16, 16, { bias: false });
  norm2 = new RMSNorm(16);
  wi = new Linear(16, 32, { bias: false });
  wo = new Linear(32, 16, { bias: false });
  forward(x: Tensor, bias: Tensor): Tensor {
    const [b, l] = x.shape;
    const heads = (t: Tensor) => E.transpose(E.reshape(t, [b!, l!, 2, 8]), [0, 2, 1, 3]);
    const h = this.norm1.forward(x);
    const y = E.attention(heads(this.q.forward(h)), heads(this.k.forward(h)), heads(this.v.forward(h)), { mask: bias });
    x = E.add(x, this.o.forward(E.reshape(E.transpose(y, [0, 2, 1, 3]), [b!, l!, 16])));
    return E.add(x, this.wo.forward(E.relu(this.wi.forward(this.norm2.forward(x)))));
  }
}

/** T5-encoder shaped: embedding, two layers, final RMSNorm. */
export class TinyT5 extends Module {
  embed = new Embedding(VOCAB, 16);
  layers = [new T5Layer(), new T5Layer()];
  final = new RMSNorm(16);
  forward(ids: Tensor, mask: Tensor): Tensor {
    const [b, l] = ids.shape;
    const bias = E.reshape(E.mul(E.sub(mask, 1), 1e9), [b!, 1, 1, l!]);
    let x = this.embed.forward(ids);
    for (const layer of this.layers) x = layer.forward(x, bias);
    return this.final.forward(x);
  }
}

export function writeEncoder(dir: string, opts: { dim?: number; batch?: number; maxTokens?: number } = {}): TinyT5 {
  const L = opts.maxTokens ?? 12;
  const B = opts.batch ?? 2;
  const net = new TinyT5();
  E.exportOnnx(
    (ids, mask) => net.forward(ids as Tensor, mask as Tensor),
    [E.concrete(new BigInt64Array(B * L), [B, L], 'int64'), E.zeros([B, L])],
    join(dir, 'encoder.onnx'),
    { inputNames: ['input_ids', 'attention_mask'], outputNames: ['last_hidden_state'] },
  );
  writeTokenizerJson(join(dir, 'tokenizer.json'));
  writeFileSync(
    join(dir, TEXT_ENCODER_CONFIG),
    JSON.stringify({
      kind: 'onnx',
      model: 'encoder.onnx',
      tokenizer: 'tokenizer.json',
      dim: opts.dim ?? 16,
      maxTokens: L,
    }),
  );
  return net;
}
