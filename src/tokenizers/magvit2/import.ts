import { basename, extname } from 'node:path';
import { stateDictOf, type TorchCheckpoint, type TorchTensor } from '../../io/torch-checkpoint.js';
import { toNumbers } from '../../io/tensor-data.js';
import { VtokError } from '../../util/errors.js';
import { expectedWeights, matchWeights, type ReleaseImporter, type WeightSource } from '../import-plan.js';
import { type Magvit2Config, parseMagvit2Config } from './config.js';

/**
 * Open-MAGVIT2's released tokenizers (TencentARC, Apache-2.0): PyTorch Lightning `.ckpt` files whose `state_dict`
 * holds the VQModel's raw weights (`encoder.*`, `decoder.*`), the discriminator and perceptual loss (`loss.*`) and
 * the EMA copies LitEma keeps (`model_ema.<name without dots>`, plus `model_ema.decay` / `num_updates`). The model
 * config is not in the checkpoint: it is the repository's YAML (`model.init_args`, whose `class_path` says image
 * (`…lfqgan.VQModel`) or video (`…video_lfqgan.VQModel`)), given with `--config` or found beside the checkpoint;
 * without one the config is read off the weights' shapes. vtok's parameter names are the reference's, so the
 * mapping is: EMA (default) or raw weights under their parameter names, everything else dropped.
 */

const RELEASE = 'Open-MAGVIT2';
const LICENCE = 'Apache-2.0';

type Shapes = Map<string, readonly number[]>;

/**
 * The reference config's parts a YAML or JSON file holds: Lightning CLI (class_path/init_args), taming-style
 * (target/params), or the init_args alone.
 */
function releaseConfig(
  content: unknown,
  file: string,
): { args: Record<string, unknown>; classPath?: string; data: Record<string, unknown> } {
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const root = obj(content);
  if (!root) throw new VtokError('the config is not a mapping', file);
  const model = obj(root.model);
  const args = obj(model?.init_args) ?? obj(model?.params) ?? (root.ddconfig ? root : undefined);
  if (!args?.ddconfig)
    throw new VtokError(
      'the config has no model.init_args.ddconfig (expected the Open-MAGVIT2 repository YAML that goes with the ' +
        'checkpoint, e.g. configs/Open-MAGVIT2/gpu/imagenet_lfqgan_128_L.yaml)',
      file,
    );
  const classPath =
    typeof model?.class_path === 'string'
      ? model.class_path
      : typeof model?.target === 'string'
        ? model.target
        : undefined;
  const dataArgs = obj(obj(root.data)?.init_args) ?? obj(obj(root.data)?.params);
  const train = obj(obj(obj(dataArgs?.train)?.params)?.config) ?? {};
  return { args, classPath, data: train };
}

/** The tokenizer a class_path names: `…video_lfqgan.VQModel` video, `…lfqgan.VQModel` image; else unknown. */
function kindOfClassPath(classPath: string | undefined): 'video' | 'image' | undefined {
  if (!classPath) return undefined;
  if (/video/i.test(classPath)) return 'video';
  return /lfqgan/i.test(classPath) ? 'image' : undefined;
}

/** 'video' for the causal 3-D CNN's names (`conv_in.conv_1`), 'image' for the 2-D one's. */
function weightsKind(shapes: Shapes): 'video' | 'image' | undefined {
  if (shapes.has('encoder.conv_in.conv_1.weight')) return 'video';
  if (shapes.has('encoder.conv_in.weight')) return 'image';
  return undefined;
}

/** The ddconfig a checkpoint's shapes imply (Encoder: conv_in, per-level blocks, conv_out; Decoder: conv_out). */
function inferDdconfig(shapes: Shapes, kind: 'video' | 'image', file: string): Record<string, unknown> {
  const c = kind === 'video' ? '.conv_1' : '';
  const get = (name: string): readonly number[] => {
    const s = shapes.get(name);
    if (!s) throw new VtokError(`cannot infer the config: no weight ${name} (give --config)`, file);
    return s;
  };
  const [ch, inCh] = get(`encoder.conv_in${c}.weight`) as [number, number];
  let levels = 0;
  while ([...shapes.keys()].some((k) => k.startsWith(`encoder.down.${levels}.`))) levels++;
  let blocks = 0;
  while ([...shapes.keys()].some((k) => k.startsWith(`encoder.down.0.block.${blocks}.`))) blocks++;
  const chMult = Array.from({ length: levels }, (_, i) => get(`encoder.down.${i}.block.0.conv2${c}.weight`)[0]! / ch);
  return {
    double_z: false,
    z_channels: get(`encoder.conv_out${c}.weight`)[0],
    resolution: 0,
    in_channels: inCh,
    out_ch: get(`decoder.conv_out${c}.weight`)[0],
    ch,
    ch_mult: chMult,
    num_res_blocks: blocks,
  };
}

/** LFQ bit order from an old checkpoint's persistent `quantize.mask` (2^(D−1)…1: MSB-first; 1…2^(D−1): LSB-first). */
function orderFromMask(ck: TorchCheckpoint, mask: TorchTensor): 'lsb' | 'msb' | undefined {
  const v = toNumbers(ck.read(mask, 'quantize.mask'), 'quantize.mask');
  const up = v.every((x, i) => x === 2 ** i);
  const down = v.every((x, i) => x === 2 ** (v.length - 1 - i));
  return up === down ? undefined : up ? 'lsb' : 'msb';
}

export const openMagvit2Importer: ReleaseImporter = {
  name: 'open-magvit2',
  accepts:
    'an Open-MAGVIT2 tokenizer checkpoint (a PyTorch Lightning .ckpt with encoder.* and decoder.* weights, or a ' +
    'folder holding one), with its repository YAML (--config) or without',
  detect(src) {
    const ck = src.checkpoint();
    if (!ck) return false;
    const names = [...stateDictOf(ck.root, ck.path).keys()];
    return names.some((k) => k.startsWith('encoder.conv_in.')) && names.some((k) => k.startsWith('decoder.'));
  },
  plan(src, opts, note) {
    const ck = src.checkpoint()!;
    const sd = stateDictOf(ck.root, ck.path);
    if (sd.has('quantize.embedding.weight'))
      throw new VtokError(
        'this checkpoint has a codebook (quantize.embedding.weight): an IBQ or VQ tokenizer, not one of ' +
          "Open-MAGVIT2's lookup-free (LFQ) tokenizers",
        ck.path,
      );
    const raw = new Map<string, TorchTensor>();
    const ema = new Map<string, TorchTensor>();
    let dropped = 0;
    let mask: TorchTensor | undefined;
    const other: string[] = [];
    for (const [k, t] of sd) {
      if (k.startsWith('encoder.') || k.startsWith('decoder.')) raw.set(k, t);
      else if (k.startsWith('model_ema.')) ema.set(k.slice('model_ema.'.length), t);
      else if (k === 'quantize.mask') mask = t;
      else if (k.startsWith('loss.') || k.startsWith('quantize.')) dropped++;
      else other.push(k);
    }
    const shapes: Shapes = new Map([...raw].map(([k, t]) => [k, t.shape]));

    // The config: --config, else the one YAML beside the checkpoint, else read off the weights.
    const yamls = src.isFolder ? src.files.filter((f) => ['.yaml', '.yml'].includes(extname(f).toLowerCase())) : [];
    const cfgFile = src.config ?? (yamls.length === 1 ? src.readConfig(yamls[0]!) : undefined);
    const wKind = weightsKind(shapes);
    if (!wKind) throw new VtokError('no encoder.conv_in weight: not an Open-MAGVIT2 tokenizer checkpoint', ck.path);
    let kind: 'video' | 'image';
    let args: Record<string, unknown>;
    let data: Record<string, unknown> = {};
    let configName: string;
    if (cfgFile) {
      const rc = releaseConfig(cfgFile.content, cfgFile.path);
      if (rc.classPath && /ibq/i.test(rc.classPath))
        throw new VtokError(
          `the config's class_path ${rc.classPath} is an IBQ tokenizer, not Open-MAGVIT2's LFQ`,
          cfgFile.path,
        );
      const cfgKind = kindOfClassPath(rc.classPath);
      if (cfgKind && cfgKind !== wKind) {
        const conv = wKind === 'video' ? 'encoder.conv_in.conv_1.weight' : 'encoder.conv_in.weight';
        throw new VtokError(
          `the config describes the ${cfgKind} tokenizer (class_path ${rc.classPath}) but ${basename(ck.path)} holds ` +
            `the ${wKind} tokenizer's weights (${conv} is [${shapes.get(conv)}]): give the config that goes with ` +
            'this checkpoint',
          cfgFile.path,
        );
      }
      if (!cfgKind) note(`the config names no known class_path: the ${wKind} tokenizer, from the weights' shapes`);
      kind = cfgKind ?? wKind;
      args = rc.args;
      data = rc.data;
      configName = basename(cfgFile.path);
    } else {
      kind = wKind;
      args = { ddconfig: inferDdconfig(shapes, kind, ck.path) };
      configName = 'the weights';
      note(
        `no config given (--config): the ${kind} tokenizer's config was read off the weights' shapes; give the ` +
          "repository's YAML to record the training size",
      );
    }
    if (args.token_factorization)
      note(
        'the config factorises tokens (token_factorization): vtok gives each token one id over all its bits, ' +
          "not the reference's pair of sub-ids (factorized_bits)",
      );

    // LFQ bit order: detectable only from the old code's persistent mask buffer.
    const detected = mask ? orderFromMask(ck, mask) : undefined;
    if (detected && opts.lfqOrder && detected !== opts.lfqOrder)
      throw new VtokError(
        `--lfq-order ${opts.lfqOrder} contradicts the checkpoint's quantize.mask buffer, which is ${detected}-first`,
        ck.path,
      );
    const lfqOrder = detected ?? opts.lfqOrder ?? 'lsb';
    if (detected) note(`LFQ bit order: ${detected.toUpperCase()}-first, read from the checkpoint's quantize.mask`);
    else if (opts.lfqOrder) note(`LFQ bit order: ${lfqOrder.toUpperCase()}-first, as given (--lfq-order)`);
    else
      note(
        'LFQ bit order: LSB-first assumed (the current Open-MAGVIT2 code). It cannot be read from these weights: ' +
          'a checkpoint trained with the June-2024 code (MSB-first) gives the same reconstructions but other ids; ' +
          'import it with --lfq-order msb',
      );

    let config: Magvit2Config;
    try {
      config = parseMagvit2Config({ ...args, kind, ...(lfqOrder === 'msb' ? { lfq_order: 'msb' } : {}) });
    } catch (e) {
      throw new VtokError(`the config is not one vtok builds: ${(e as Error).message}`, cfgFile?.path ?? ck.path);
    }

    // EMA by default: LitEma's buffer of parameter p is model_ema.<p without dots>.
    let which = opts.weights ?? 'ema';
    if (which === 'ema' && ema.size === 0) {
      which = 'raw';
      note('the checkpoint has no EMA weights (model_ema.*): imported its raw weights');
    }
    const available = new Map<string, WeightSource>();
    const noEma: string[] = [];
    const seen = new Map<string, string>();
    for (const [name, t] of raw) {
      let src = t;
      if (which === 'ema') {
        const key = name.replaceAll('.', '');
        const twin = seen.get(key);
        if (twin) throw new VtokError(`weights ${twin} and ${name} share the EMA name model_ema.${key}`, ck.path);
        seen.set(key, name);
        const e = ema.get(key);
        if (e) src = e;
        else noEma.push(name);
      }
      available.set(name, { shape: src.shape, dtype: src.dtype, read: () => ck.read(src, name) });
    }
    if (noEma.length)
      throw new VtokError(
        `${noEma.length} weight(s) have no EMA copy (model_ema.*): ${noEma.slice(0, 5).join(', ')}` +
          `${noEma.length > 5 ? ', …' : ''}; import the raw weights with --weights raw`,
        ck.path,
      );
    for (const k of other)
      available.set(k, { shape: sd.get(k)!.shape, dtype: sd.get(k)!.dtype, read: () => ck.read(sd.get(k)!, k) });

    const tensors = matchWeights(
      expectedWeights('magvit2', config as unknown as Record<string, unknown>, opts.half),
      available,
      `the config (${kind} tokenizer, from ${configName})`,
      ck.path,
    );
    const frames = kind === 'video' ? (num(data.sequence_length) ?? 17) : 1;
    const size = num(data.size) ?? (config.ddconfig.resolution || 128);
    return {
      release: `${RELEASE} ${kind} tokenizer`,
      licence: LICENCE,
      config: {
        model: { kind: 'magvit2', config },
        data: { size, frames, channels: config.ddconfig.in_channels },
      },
      tensors,
      files: [{ path: ck.path, role: 'weights' }, ...(cfgFile ? [{ path: cfgFile.path, role: 'config' }] : [])],
      provenance: {
        weights: which,
        lfqOrder,
        lfqOrderFrom: detected ? 'quantize.mask' : opts.lfqOrder ? '--lfq-order' : 'assumed',
        dropped: {
          [which === 'ema' ? 'raw' : 'ema']: which === 'ema' ? raw.size : ema.size,
          lossAndQuantizer: dropped,
        },
      },
    };
  },
};

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
