import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import { LarpModel, parseLarpConfig } from '../../src/tokenizers/larp/index.js';
import type { Block } from '../../src/tokenizers/larp/vit.js';
import { routeOf } from '../../src/tokenizers/larp/routed-init.js';
import { larpTrainer } from '../../src/tokenizers/larp/kind.js';

/**
 * vtok's routed init (routed-init.ts): the holistic path starts routed, query i ↔ patch π(i), patch j ↔ latent π'(j).
 */
const config = (over: Record<string, unknown> = {}) => {
  const tiny = larpTrainer.presets.tiny!;
  // the tiny preset without routed init (the preset turns it on), plus `over`
  const { routed_init_gain: _, ...raw } = larpTrainer.modelConfig(
    { ...tiny, model: { ...tiny.model, prior: false } },
    { size: 32, frames: 8, channels: 3 },
  ) as Record<string, unknown>;
  return { ...raw, ...over } as Record<string, unknown>;
};

/**
 * Head-averaged attention probabilities of the last `readers` rows of `seq` [1, t, d] over all t keys, in block `blk`.
 */
function attentionOfReaders(blk: Block, seq: E.Tensor, readers: number): number[][] {
  const [, t, d] = seq.shape as [number, number, number];
  const heads = blk.attn.heads,
    hd = d / heads;
  const qkv = E.toArray(blk.attn.qkv.forward(blk.norm1.forward(seq)));
  const out: number[][] = [];
  for (let r = t - readers; r < t; r++) {
    const p = new Array<number>(t).fill(0);
    for (let h = 0; h < heads; h++) {
      const logits = Array.from({ length: t }, (_, k) => {
        let s = 0;
        for (let c = 0; c < hd; c++) s += qkv[r * 3 * d + h * hd + c]! * qkv[k * 3 * d + d + h * hd + c]!;
        return s / Math.sqrt(hd);
      });
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((a, b) => a + b, 0);
      e.forEach((v, k) => {
        p[k]! += v / z / heads;
      });
    }
    out.push(p);
  }
  return out;
}

function checkRouted(model: LarpModel, tokens: number) {
  E.seed(3);
  const video = E.randomUniform([1, 3, 8, 32, 32]);
  const patches = E.add(model.x_embedder.forward(video), model.encoder_patch_pe.value);
  const n = patches.shape[1]!;
  const queries = E.unsqueeze(model.encoder_latent_query_embed.value, 0);
  const enc = attentionOfReaders(model.encoder.blocks[0]!, E.concat([patches, queries], 1), tokens);
  const encoded = model.encode(video).encoded;
  const pq = E.add(model.decoder_patch_query_embed.value, model.decoder_patch_query_token_type_embed.value);
  const dec = attentionOfReaders(
    model.decoder.blocks[0]!,
    E.concat([E.add(encoded, model.decoder_latent_pe.value), pq], 1),
    n,
  );
  const argmax = (p: number[]) => p.indexOf(Math.max(...p));
  enc.forEach((p, i) => {
    assert.equal(argmax(p), routeOf(i, tokens, n), `holistic query ${i}`);
    assert.ok(p[routeOf(i, tokens, n)]! > 0.2, `query ${i} weight ${p[routeOf(i, tokens, n)]}`);
  });
  dec.forEach((p, j) => {
    assert.equal(argmax(p), routeOf(j, n, tokens), `patch query ${j}`);
    assert.ok(p[routeOf(j, n, tokens)]! > 0.2, `patch ${j} weight ${p[routeOf(j, n, tokens)]}`);
  });
  return { enc, dec };
}

describe('LARP routed init', () => {
  it('starts the holistic path routed: query i reads patch i, decoder patch j reads latent j', () => {
    E.seed(0);
    const { enc } = checkRouted(new LarpModel(parseLarpConfig(config({ routed_init_gain: 1.5 }))), 32);
    // the reference init reads everything about evenly: no query puts a fifth of its attention on one token
    E.seed(0);
    const ref = new LarpModel(parseLarpConfig(config()));
    const patches = E.add(ref.x_embedder.forward(E.randomUniform([1, 3, 8, 32, 32])), ref.encoder_patch_pe.value);
    const refEnc = attentionOfReaders(
      ref.encoder.blocks[0]!,
      E.concat([patches, E.unsqueeze(ref.encoder_latent_query_embed.value, 0)], 1),
      32,
    );
    assert.ok(Math.max(...refEnc.flat()) < 0.2, `reference max weight ${Math.max(...refEnc.flat())}`);
    assert.ok(Math.min(...enc.map((p, i) => p[i]!)) > Math.max(...refEnc.flat()));
  });

  it('spreads fewer tokens than patches evenly over the patches', () => {
    E.seed(1);
    checkRouted(new LarpModel(parseLarpConfig(config({ routed_init_gain: 1.5, bottleneck_token_num: 16 }))), 16);
  });

  it('changes only the positions and the first q projections; other weights draw the same numbers', () => {
    E.seed(5);
    const routed = new LarpModel(parseLarpConfig(config({ routed_init_gain: 1.5 })));
    E.seed(5);
    const ref = new LarpModel(parseLarpConfig(config()));
    const changed = new Set([
      'encoder_patch_pe',
      'decoder_patch_query_embed',
      'decoder_latent_pe',
      'encoder.blocks.0.attn.qkv.weight',
      'decoder.blocks.0.attn.qkv.weight',
    ]);
    const refParams = new Map(ref.namedParams());
    for (const [name, p] of routed.namedParams()) {
      const other = E.toArray(refParams.get(name)!.value);
      const same = E.toArray(p.value).every((v, i) => v === other[i]);
      assert.equal(same, !changed.has(name), name);
    }
    // the value rows of the routed blocks are untouched
    const d = 64;
    const v = (m: LarpModel) => E.toArray(m.encoder.blocks[0]!.attn.qkv.weight.value).slice(2 * d * d);
    assert.deepEqual(v(routed), v(ref));
  });

  it('rejects a gain that is not positive', () => {
    assert.throws(() => parseLarpConfig(config({ routed_init_gain: 0 })), /routed_init_gain must be > 0/);
    assert.throws(() => parseLarpConfig(config({ routed_init_gain: 'x' })), /routed_init_gain/);
  });
});
