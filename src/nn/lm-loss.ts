import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { check } from '../util/errors.js';
import type { DecoderLm } from './decoder-lm.js';

/** Targets with this value are not scored (PyTorch's ignore_index). */
export const IGNORE = -100;

/** Rows of the head and its cross-entropy computed together (see `headCrossEntropy`). */
export const HEAD_CHUNK_ROWS = 256;

/**
 * The next-token cross-entropy of a decoder LM (nn/decoder-lm.ts): final hidden states `hidden` [..., dim] against
 * `targets` [...] (the id that follows each position; IGNORE = not scored) through the model's head, in chunks of
 * `chunk` rows (see `headCrossEntropy`). The mean over scored positions, or with reduction 'none' the loss of every
 * position (0 where not scored).
 */
export function nextTokenLoss(
  model: DecoderLm,
  hidden: Tensor,
  targets: Tensor,
  o: { chunk?: number; reduction?: 'mean' | 'none' } = {},
): Tensor {
  const D = model.cfg.dim,
    N = targets.size;
  check(model.cfg.vocabSize !== null, 'next-token loss: the model predicts vectors, not tokens');
  check(!model.parts.head?.bias, 'next-token loss: the head has a bias (the chunked cross-entropy takes none)');
  check(
    hidden.shape.slice(0, -1).join() === targets.shape.join() && hidden.shape[hidden.rank - 1] === D,
    `next-token loss: hidden states [${hidden.shape}] do not fit targets [${targets.shape}] and width ${D}`,
  );
  const t = E.reshape(E.cast(targets, 'int64'), [N]);
  const rows = headCrossEntropy(E.reshape(hidden, [N, D]), model.headWeight.value, t, o.chunk);
  if (o.reduction === 'none') return E.reshape(rows, targets.shape);
  return E.maskedMean(rows, E.notEqual(t, E.tensor([IGNORE], [], 'int64')));
}

/**
 * Per-row cross-entropy of the logits h Wᵀ (h [N, D], head weight W [V, D]) against `targets` [N] (IGNORE rows give
 * 0), without vocabulary-sized tensors beyond one chunk's working set: the logits are made `chunk` rows at a time and
 * reduced to their log-sum-exp, target logit and softmax; the softmax is what the backward pass keeps (N × V floats
 * in all), which it turns into (softmax − onehot)·g, the gradients of h and W. A full-vocabulary head (266,256 ids)
 * over 1,024 rows would otherwise hold several 1.1 GB tensors (logits, log-softmax, their gradients) at once.
 * The weight gradient is accumulated as Wᵀ's, [D, V] = Σ hᵀ·d, and transposed once: onnxruntime makes that
 * product faster than dᵀ·h, the other way round.
 */
export function headCrossEntropy(h: Tensor, w: Tensor, targets: Tensor, chunk = HEAD_CHUNK_ROWS): Tensor {
  const [N, D] = h.shape as [number, number];
  check(
    w.rank === 2 && w.shape[1] === D && targets.shape.join() === String(N),
    `head cross-entropy: h [${h.shape}], W [${w.shape}], targets [${targets.shape}] do not fit`,
  );
  check(Number.isInteger(chunk) && chunk > 0, `head cross-entropy: chunk must be a positive integer, got ${chunk}`);
  const valid = E.notEqual(targets, E.tensor([IGNORE], [], 'int64'));
  const safe = E.reshape(E.where(valid, targets, E.tensor([0], [], 'int64')), [N, 1]);
  const starts = Array.from({ length: Math.ceil(N / chunk) }, (_, i) => i * chunk);
  const rowsOf = (t: Tensor, s: number) => E.narrow(t, 0, s, Math.min(chunk, N - s));
  const [loss] = E.customVjp(
    (hh: Tensor, ww: Tensor) => {
      const per: Tensor[] = [],
        soft: Tensor[] = [];
      for (const s of starts) {
        // one chunk's logits at a time: each chunk starts after the previous one's softmax exists
        const logits = E.linear(after(rowsOf(hh, s), soft.slice(-1)), ww);
        const lse = E.logsumexp(logits, -1, true);
        per.push(E.sub(E.reshape(lse, [-1]), E.reshape(E.takeAlongAxis(logits, rowsOf(safe, s), -1), [-1])));
        soft.push(E.exp(E.sub(logits, lse)));
      }
      return [E.where(valid, per.length === 1 ? per[0]! : E.concat(per, 0), 0), ...soft];
    },
    ([g], [hh, ww], [, ...soft]) => {
      const coef = E.reshape(E.where(valid, g!, 0), [N, 1]);
      const gh: Tensor[] = [];
      let gwT: Tensor | null = null;
      starts.forEach((s, k) => {
        // Each chunk starts after the previous one's two gradient products, so that one chunk's [n, V] gradient
        // exists at a time (onnxruntime orders nodes by a depth-first walk from the outputs, which would otherwise
        // make every chunk's gradient of the logits before the first product uses one).
        const c = rowsOf(coef, s);
        const p = after(soft[k]!, gh.length ? [gh[gh.length - 1]!, gwT!] : []);
        // d loss / d logits = (softmax − onehot(target)) · g
        const d = E.scatterAdd(E.mul(p, c), 1, rowsOf(safe, s), E.neg(c));
        gh.push(E.matmul(d, ww!));
        const part = E.matmul(E.swapAxes(rowsOf(hh!, s)), d);
        gwT = gwT ? E.add(gwT, part) : part;
      });
      return [gh.length === 1 ? gh[0]! : E.concat(gh, 0), E.swapAxes(gwT!)];
    },
  )(h, w);
  return loss!;
}

/** x, made to depend on `deps` (x + 0·(one element of each)) so that onnxruntime runs them before what reads x. */
function after(x: Tensor, deps: Tensor[]): Tensor {
  if (!deps.length) return x;
  const first = deps.map((d) => E.narrow(E.reshape(d, [-1]), 0, 0, 1));
  return E.add(x, E.mul(first.length === 1 ? first[0]! : E.sum(E.concat(first, 0), 0, true), 0));
}
