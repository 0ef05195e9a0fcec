import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { importOnnx, type OnnxFunction } from '../onnx-import/onnx-import.js';
import { VtokError } from '../util/errors.js';

/**
 * An LPIPS-style perceptual loss over a feature network loaded from ONNX (frozen; imported into vtok's own graph
 * by the differentiable importer, so the loss's gradient reaches the reconstruction):
 *
 *   d(x, y) = Σ_l w_l · mean_{n,h,w} ‖f̂_l(x) − f̂_l(y)‖²  /  Σ_l w_l,
 *   f̂ = f / √(Σ_c f² + ε)  (unit length along channels)
 *
 * which is LPIPS's "baseline" distance (no learned per-channel weights): per layer, 2 − 2·cosine of the feature
 * vectors averaged over positions, then a (weighted) average over layers, so it lies in [0, 4]. Video frames are
 * folded into the batch (N×C×T×H×W → N·T×C×H×W; import the network with anyBatch); inputs in vtok's [-1, 1] are mapped
 * to the range the network expects and optionally standardised per channel; gray clips are repeated to three channels
 * for an RGB network.
 *
 * What the file may say, as model metadata_props (all optional; options passed in code win):
 *   vtok.perceptual.layers   JSON list of value names to use as feature layers (default: the graph's outputs)
 *   vtok.perceptual.weights  JSON list (one per layer, in order) or object {name: weight}; default equal weights
 *   vtok.input_range         "lo,hi": the pixel range the network expects (default "-1,1")
 *   vtok.input_mean, vtok.input_std   "a,b,c": per-channel standardisation after the range mapping
 */
export interface PerceptualOptions {
  layers?: string[];
  weights?: number[];
  range?: [number, number];
  mean?: number[];
  std?: number[];
  /** Added to the squared channel norm before normalising (keeps all-zero feature vectors finite). */
  eps?: number;
}

export class PerceptualLoss {
  readonly layers: string[];
  readonly weights: number[];
  readonly range: [number, number];
  readonly mean?: number[];
  readonly std?: number[];
  readonly eps: number;
  /** Channels, height and width the network's input declares (null where free). */
  private readonly expects: (number | null)[];

  constructor(
    readonly net: OnnxFunction,
    opts: PerceptualOptions = {},
  ) {
    const file = net.file;
    const meta = net.metadata;
    const json = (key: string): unknown => {
      if (meta[key] === undefined) return undefined;
      try {
        return JSON.parse(meta[key]);
      } catch {
        throw new VtokError(`metadata ${key} is not JSON: ${meta[key]}`, file);
      }
    };
    const list = (key: string): number[] | undefined => {
      if (meta[key] === undefined) return undefined;
      const v = meta[key].split(',').map(Number);
      if (v.some((x) => !Number.isFinite(x)))
        throw new VtokError(`metadata ${key} must be comma-separated numbers, got "${meta[key]}"`, file);
      return v;
    };
    if (net.inputs.length !== 1)
      throw new VtokError(
        `a perceptual feature network takes one image input, this one takes ${net.inputs.length}`,
        file,
      );
    const input = net.inputs[0]!;
    if (input.dtype !== 'float32')
      throw new VtokError(`the network's input "${input.name}" is ${input.dtype}, not float`, file);
    if (input.shape && input.shape.length !== 4)
      throw new VtokError(
        `the network's input "${input.name}" must be N×C×H×W, it has rank ${input.shape.length}`,
        file,
      );
    this.expects = input.shape
      ? input.shape.slice(1).map((d) => (typeof d === 'number' ? d : null))
      : [null, null, null];

    const metaLayers = json('vtok.perceptual.layers');
    if (metaLayers !== undefined && !(Array.isArray(metaLayers) && metaLayers.every((s) => typeof s === 'string'))) {
      throw new VtokError('metadata vtok.perceptual.layers must be a JSON list of value names', file);
    }
    this.layers = opts.layers ?? (metaLayers as string[] | undefined) ?? net.outputs.map((o) => o.name);
    if (this.layers.length === 0) throw new VtokError('the network has no outputs to use as feature layers', file);
    const known = new Set(net.valueNames());
    for (const l of this.layers)
      if (!known.has(l)) throw new VtokError(`feature layer "${l}" is not a value of the network`, file);

    let weights = opts.weights;
    const mw = json('vtok.perceptual.weights');
    if (!weights && mw !== undefined) {
      if (Array.isArray(mw)) weights = mw as number[];
      else if (mw && typeof mw === 'object') weights = this.layers.map((l) => (mw as Record<string, number>)[l] ?? 0);
      else throw new VtokError('metadata vtok.perceptual.weights must be a JSON list or object', file);
    }
    weights ??= this.layers.map(() => 1);
    if (
      weights.length !== this.layers.length ||
      weights.some((w) => typeof w !== 'number' || !Number.isFinite(w) || w < 0) ||
      !weights.some((w) => w > 0)
    ) {
      throw new VtokError(
        `per-layer weights must be ${this.layers.length} non-negative ` +
          `numbers, not all zero; got ${JSON.stringify(weights)}`,
        file,
      );
    }
    this.weights = weights;

    const r = opts.range ?? list('vtok.input_range') ?? [-1, 1];
    if (r.length !== 2 || !(r[1]! > r[0]!))
      throw new VtokError(`the input range must be "lo,hi" with lo < hi, got ${JSON.stringify(r)}`, file);
    this.range = [r[0]!, r[1]!];
    this.mean = opts.mean ?? list('vtok.input_mean');
    this.std = opts.std ?? list('vtok.input_std');
    if (this.std?.some((s) => !(s > 0))) throw new VtokError('vtok.input_std must be positive', file);
    this.eps = opts.eps ?? 1e-6;
  }

  /** Frames in [-1, 1] (N×C×T×H×W or N×C×H×W) → the network's input batch (N·T×C'×H×W). */
  prepare(x: Tensor): Tensor {
    let f = x;
    if (x.rank === 5) {
      const [n, c, t, h, w] = x.shape as [number, number, number, number, number];
      f = E.reshape(E.transpose(x, [0, 2, 1, 3, 4]), [n * t, c, h, w]);
    } else if (x.rank !== 4)
      throw new VtokError(
        `perceptual loss: expected N×C×T×H×W video or N×C×H×W images, got ${x.describe()}`,
        this.net.file,
      );
    const [b, c, h, w] = f.shape as [number, number, number, number];
    const [wantC, wantH, wantW] = this.expects;
    if ((wantH !== null && wantH !== h) || (wantW !== null && wantW !== w)) {
      throw new VtokError(
        `the feature network expects ${wantH ?? '*'}×${wantW ?? '*'} frames, these are ${h}×${w}`,
        this.net.file,
      );
    }
    const channels = wantC ?? c;
    if (channels !== c) {
      if (c === 1) f = E.broadcastTo(f, [b, channels, h, w]);
      else if (c === 3 && channels === 1) f = E.sum(E.mul(f, E.tensor([0.299, 0.587, 0.114], [1, 3, 1, 1])), 1, true);
      else
        throw new VtokError(
          `the feature network expects ${channels} channels; ${c}-channel frames cannot be mapped to it`,
          this.net.file,
        );
    }
    const [lo, hi] = this.range;
    if (lo !== -1 || hi !== 1) f = E.add(E.mul(f, (hi - lo) / 2), (hi + lo) / 2);
    const perChannel = (v: number[], what: string) => {
      if (v.length !== channels && v.length !== 1)
        throw new VtokError(`${what} has ${v.length} values for ${channels} channels`, this.net.file);
      return E.tensor(v.length === 1 ? Array(channels).fill(v[0]) : v, [1, channels, 1, 1]);
    };
    if (this.mean) f = E.sub(f, perChannel(this.mean, 'vtok.input_mean'));
    if (this.std) f = E.div(f, perChannel(this.std, 'vtok.input_std'));
    return f;
  }

  /** The feature maps of frames in [-1, 1], one per layer. */
  features(x: Tensor): Tensor[] {
    const out = this.net.run([this.prepare(x)], this.layers);
    return this.layers.map((l) => {
      const f = out[l]!;
      if (f.rank < 2 || f.dtype !== 'float32')
        throw new VtokError(
          `feature layer "${l}" must be a float N×C(×…) tensor, it is ${f.describe()}`,
          this.net.file,
        );
      return f;
    });
  }

  /** Graph code: the perceptual distance between a batch `x` and its reconstruction `y` (both in [-1, 1]). */
  loss(x: Tensor, y: Tensor): Tensor {
    if (x.shape.join() !== y.shape.join())
      throw new VtokError(`perceptual loss: shapes differ, ${x.describe()} vs ${y.describe()}`, this.net.file);
    const fx = this.features(x),
      fy = this.features(y);
    const unit = (f: Tensor) => E.mul(f, E.rsqrt(E.add(E.sum(E.square(f), 1, true), this.eps)));
    const total = this.weights.reduce((a, b) => a + b, 0);
    const terms: Tensor[] = [];
    fx.forEach((f, l) => {
      if (this.weights[l] === 0) return;
      const per = E.mean(E.sum(E.square(E.sub(unit(f), unit(fy[l]!))), 1));
      terms.push(E.mul(per, this.weights[l]! / total));
    });
    return terms.reduce((a, b) => E.add(a, b));
  }
}

/** Loads a perceptual loss from an ONNX feature network; `sha256` identifies the file in a run's config. */
export function loadPerceptual(path: string, opts: PerceptualOptions = {}): { loss: PerceptualLoss; sha256: string } {
  const net = importOnnx(path, { anyBatch: true });
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  return { loss: new PerceptualLoss(net, opts), sha256 };
}
