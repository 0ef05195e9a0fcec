import { createHash } from 'node:crypto';
import type { Tensor } from '../engine/core.js';
import { check } from '../util/errors.js';
import { canonicalJson } from '../util/json.js';

/**
 * Which tokenizer produced a set of ids: token shards (src/corpus/) and the LM's vocabulary layout
 * (src/generation/vocab.ts) record it, and refuse ids from any other tokenizer.
 */
export interface TokenizerIdentity {
  kind: string;
  vocabSize: number;
  /** sha256 (hex) of the tokenizer's canonical config JSON and its weights by name. */
  identity: string;
}

/**
 * Identity of a tokenizer: sha256 over its kind and canonical config, then each weight by sorted name (name,
 * dtype, shape, bytes). Two tokenizers share it only when they map video to the same ids.
 */
export function tokenizerIdentity(
  tok: { kind: string; vocabSize: number; config: Record<string, unknown> },
  weights: Map<string, Tensor>,
): TokenizerIdentity {
  const h = createHash('sha256');
  h.update(canonicalJson({ kind: tok.kind, config: tok.config }));
  for (const name of [...weights.keys()].sort()) {
    const t = weights.get(name)!;
    check(t.isConcrete, `weight ${name} has no value`);
    const d = t.data;
    h.update(`\n${name}:${t.dtype}:[${t.shape.join(',')}]\n`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return { kind: tok.kind, vocabSize: tok.vocabSize, identity: h.digest('hex') };
}
