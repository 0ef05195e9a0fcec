import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import type { GoldenFile, ParityRunner } from '../../parity/index.js';
import { VtokError } from '../../util/errors.js';
import { parseLarpArConfig } from './config.js';
import { LarpArDecoder } from './decoder.js';
import { LarpAr } from './model.js';

/**
 * LARP AR parity (hywang66/LARP @ 8aaed63, models/larp_ar.py, ar/generate.py), the model built from the file's
 * config and every param.* loaded strictly:
 * - 'larp_ar': the full pass with the classes and with the null class, their guided combination at the file's
 *   cfg_scale, and the same logits through the KV-cache decoder (prefill on the class, then one token at a time;
 *   the class and null-class streams as one batch, as the sampler runs them);
 * - 'larp_ar_fp': the frame-prediction pass on a condition that ends with the separator.
 */
function build(g: GoldenFile): LarpAr {
  const model = new LarpAr(parseLarpArConfig(g.config, g.path));
  model.loadStateDict(g.params(), { strict: true, source: g.path });
  return model.eval();
}

const ints = (t: Tensor) => Int32Array.from(E.toArray(t));

/** Logits [B, n + 1, V] of every position through the KV cache, rows 0…B−1 of a prefill of `rows` conditions. */
function cachedLogits(model: LarpAr, classIds: Int32Array, idx: Tensor, B: number): Tensor {
  const V = model.ref.vocab_size,
    [, n] = idx.shape as [number, number];
  const dec = new LarpArDecoder(model);
  try {
    const rows = classIds.length;
    const range = { lo: 0, hi: V };
    const { cache, logits } = dec.prefill({ classIds }, 1 + n, range);
    const out = new Float32Array(B * (n + 1) * V);
    const put = (l: Float32Array, j: number) => {
      for (let b = 0; b < B; b++) out.set(l.subarray(b * V, (b + 1) * V), (b * (n + 1) + j) * V);
    };
    put(logits, 0);
    const ids = ints(idx);
    for (let j = 0; j < n; j++) {
      const fed = Int32Array.from({ length: rows }, (_, r) => ids[(r % B) * n + j]!);
      put(dec.step(cache, fed, range), j + 1);
    }
    return E.concrete(out, [B, n + 1, V], 'float32');
  } finally {
    dec.dispose();
  }
}

const larpAr: ParityRunner = (g) => {
  const model = build(g);
  const scale = Number(g.metadata.cfg_scale);
  if (!Number.isFinite(scale)) throw new VtokError('__metadata__ has no cfg_scale', g.path);
  const idx = g.get('input.idx'),
    cls = g.get('input.cls');
  const B = idx.shape[0]!;
  const nul = E.full([B], model.ref.num_classes, 'int64');
  const run = E.jit(
    (i: Tensor, c: Tensor, u: Tensor) => {
      const cond = model.logitsFor(i, c),
        uncond = model.logitsFor(i, u);
      return [cond, uncond, E.add(uncond, E.mul(E.sub(cond, uncond), scale))];
    },
    { name: 'larp_ar_parity' },
  );
  const [logits, uncond, cfg] = run(idx, cls, nul) as Tensor[];
  const classes = Int32Array.from([...ints(cls), ...new Array<number>(B).fill(model.ref.num_classes)]);
  return new Map([
    ['output.logits', logits!],
    ['output.uncond_logits', uncond!],
    ['output.cfg_logits', cfg!],
    ['output.cached_logits', cachedLogits(model, classes, idx, B)],
  ]);
};

const larpArFp: ParityRunner = (g) => {
  const model = build(g);
  const run = E.jit((i: Tensor, c: Tensor) => [model.logitsFor(i, c)], { name: 'larp_ar_fp_parity' });
  const [logits] = run(g.get('input.idx'), g.get('input.cond')) as Tensor[];
  return new Map([['output.logits', logits!]]);
};

export const larpArParity: Record<string, ParityRunner> = { larp_ar: larpAr, larp_ar_fp: larpArFp };
