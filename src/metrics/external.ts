import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { VtokError, check } from '../util/errors.js';
import type { ClipTensor } from '../io/frame.js';
import { FeatureStats, frechetDistance } from './frechet.js';

/**
 * LPIPS and FVD need pretrained networks (AlexNet/VGG with LPIPS heads; I3D trained on Kinetics-400) whose
 * weights cannot be downloaded here. The user exports them to ONNX once and points vtok at the files; these
 * texts say exactly what to supply.
 */
export const LPIPS_HELP =
  'LPIPS needs a pretrained network vtok cannot download. Export one to ONNX (e.g. the `lpips` Python package, ' +
  "net='alex' or 'vgg', version 0.1) with two inputs of shape N×3×H×W holding images in [-1, 1] and one output " +
  'with the N distances, then pass the file with --lpips-onnx <file> or set VTOK_LPIPS_ONNX.';

export const I3D_HELP =
  'FVD needs the I3D network (Kinetics-400) that vtok cannot download. Export it to ONNX with one input of shape ' +
  'N×3×T×224×224 holding videos in [-1, 1] and an output of N feature vectors (the 400 logits, as in the FVD ' +
  'reference, or the pooled 1024-d features), then pass the file with --i3d-onnx <file> or set VTOK_I3D_ONNX.';

async function loadSession(path: string | undefined, envVar: string, help: string): Promise<{ session: ort.InferenceSession; path: string }> {
  const p = path ?? process.env[envVar];
  if (!p) throw new VtokError(`no network given. ${help}`);
  if (!existsSync(p)) throw new VtokError(`no such file. ${help}`, p);
  try {
    return { session: await ort.InferenceSession.create(p), path: p };
  } catch (e) {
    throw new VtokError(`not an ONNX model onnxruntime can load (${(e as Error).message.split('\n')[0]}). ${help}`, p);
  }
}

/** The static sizes an input declares (undefined where a dim is symbolic). */
function declaredShape(session: ort.InferenceSession, name: string): (number | undefined)[] | undefined {
  const meta = (session as unknown as { inputMetadata?: { name: string; shape?: (number | string)[] }[] }).inputMetadata;
  const m = meta?.find((x) => x.name === name);
  return m?.shape?.map((d) => (typeof d === 'number' && d > 0 ? d : undefined));
}

function checkShape(declared: (number | undefined)[] | undefined, shape: readonly number[], file: string, what: string): void {
  if (!declared) return;
  check(declared.length === shape.length, `${what}: the network takes a ${declared.length}-d input, got shape [${shape.join(', ')}]`, file);
  declared.forEach((d, i) => {
    check(d === undefined || i === 0 || d === shape[i], () => `${what}: the network expects input shape [${declared.map((x) => x ?? '?').join(', ')}], got [${shape.join(', ')}]; read the videos at that size (e.g. --size/--crop)`, file);
  });
}

export class LpipsNet {
  private constructor(private session: ort.InferenceSession, readonly path: string) {}

  /** Loads the LPIPS network from `path` (or $VTOK_LPIPS_ONNX). */
  static async load(path?: string): Promise<LpipsNet> {
    const { session, path: p } = await loadSession(path, 'VTOK_LPIPS_ONNX', LPIPS_HELP);
    if (session.inputNames.length !== 2) throw new VtokError(`an LPIPS network takes 2 inputs, this one takes ${session.inputNames.length}. ${LPIPS_HELP}`, p);
    return new LpipsNet(session, p);
  }

  /** Per-pair distances between two image batches N×3×H×W in [-1, 1]. */
  async distance(a: Float32Array, b: Float32Array, shape: [number, number, number, number]): Promise<Float32Array> {
    const [n] = shape;
    check(a.length === b.length && a.length === shape.reduce((x, y) => x * y, 1), 'lpips: inputs do not match the shape');
    const [ia, ib] = this.session.inputNames as [string, string];
    checkShape(declaredShape(this.session, ia), shape, this.path, 'lpips');
    const out = await this.session.run({ [ia]: new ort.Tensor('float32', a, shape), [ib]: new ort.Tensor('float32', b, shape) });
    const d = out[this.session.outputNames[0]!]!.data as Float32Array;
    check(d.length === n, `lpips: the network returned ${d.length} values for ${n} pairs. ${LPIPS_HELP}`, this.path);
    return Float32Array.from(d);
  }

  /** Mean LPIPS over the frames of two clip tensors N×3×T×H×W (each frame pair compared as an image). */
  async clipDistance(a: ClipTensor, b: ClipTensor): Promise<number> {
    check(a.shape.join() === b.shape.join(), `lpips: clip shapes differ ([${a.shape.join(', ')}] vs [${b.shape.join(', ')}])`);
    const [N, C, T, H, W] = a.shape;
    const imgs = (x: Float32Array) => {
      // N×C×T×H×W → (N·T)×C×H×W
      const out = new Float32Array(x.length);
      const plane = H * W;
      for (let n = 0; n < N; n++)
        for (let t = 0; t < T; t++)
          for (let c = 0; c < C; c++) out.set(x.subarray(((n * C + c) * T + t) * plane, ((n * C + c) * T + t + 1) * plane), ((n * T + t) * C + c) * plane);
      return out;
    };
    const d = await this.distance(imgs(a.data), imgs(b.data), [N * T, C, H, W]);
    return d.reduce((s, v) => s + v, 0) / d.length;
  }
}

export class I3dNet {
  private constructor(private session: ort.InferenceSession, readonly path: string) {}

  /** Loads the I3D feature network from `path` (or $VTOK_I3D_ONNX). */
  static async load(path?: string): Promise<I3dNet> {
    const { session, path: p } = await loadSession(path, 'VTOK_I3D_ONNX', I3D_HELP);
    if (session.inputNames.length !== 1) throw new VtokError(`an I3D network takes 1 input, this one takes ${session.inputNames.length}. ${I3D_HELP}`, p);
    return new I3dNet(session, p);
  }

  /** The input shape the network declares (undefined for symbolic dims), e.g. [?, 3, 16, 224, 224]. */
  get inputShape(): (number | undefined)[] | undefined {
    return declaredShape(this.session, this.session.inputNames[0]!);
  }

  /** Feature vectors (N×dim, row-major) of a clip batch N×3×T×H×W in [-1, 1]. */
  async features(clips: ClipTensor): Promise<{ data: Float32Array; dim: number }> {
    const name = this.session.inputNames[0]!;
    checkShape(this.inputShape, clips.shape, this.path, 'fvd');
    const out = await this.session.run({ [name]: new ort.Tensor('float32', clips.data, clips.shape) });
    const f = out[this.session.outputNames[0]!]!.data as Float32Array;
    const n = clips.shape[0];
    check(f.length % n === 0 && f.length > 0, `fvd: the network returned ${f.length} values for ${n} clips. ${I3D_HELP}`, this.path);
    return { data: Float32Array.from(f), dim: f.length / n };
  }
}

/**
 * FVD: the Fréchet distance between I3D features of real and generated clips. Batches stream through, so the
 * sets can be far larger than memory; each needs at least 2 clips (more than the feature dimension for a
 * full-rank covariance — FVD is usually reported on 2048 clips or more).
 */
export async function fvd(net: I3dNet, real: Iterable<ClipTensor> | AsyncIterable<ClipTensor>, fake: Iterable<ClipTensor> | AsyncIterable<ClipTensor>): Promise<number> {
  const stats = async (batches: Iterable<ClipTensor> | AsyncIterable<ClipTensor>) => {
    let acc: FeatureStats | undefined;
    for await (const b of batches as AsyncIterable<ClipTensor>) {
      const { data, dim } = await net.features(b);
      acc ??= new FeatureStats(dim);
      check(acc.dim === dim, `fvd: feature dimension changed from ${acc.dim} to ${dim}`, net.path);
      acc.add(data);
    }
    check(acc, 'fvd: no clips given');
    return acc.stats();
  };
  return frechetDistance(await stats(real), await stats(fake));
}
