import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../../src/engine/core.js';
import { writeSafetensors } from '../../src/io/safetensors-file.js';
import { readGolden } from '../../src/parity/golden.js';
import {
  Dict,
  FloatW,
  ObjW,
  type PyW,
  Storages,
  stateDict,
  TensorW,
  Tuple,
  writeTorchSave,
} from '../io/torch-writer.js';

/**
 * Release-shaped files built from the golden cases, as the authors publish them: an Open-MAGVIT2 Lightning `.ckpt`
 * (raw weights, their EMA copies under LitEma's dotless names, a discriminator and perceptual loss with EMA copies,
 * optimizer and loop state, hyper-parameters holding pickled argparse and numpy objects) with its repository-style
 * YAML; and a LARP folder as PyTorchModelHubMixin saves it (config.json + model.safetensors). The EMA copies are
 * the golden weights and the raw ones differ from them, so reproducing the golden outputs proves the EMA was taken.
 */
const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
export const golden = (name: string) => resolve(repoRoot, 'test/fixtures/golden', `${name}.safetensors`);

const f32 = (t: Tensor) => t.data as Float32Array;
const bytesOf = (a: Float32Array | Int32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The raw (non-EMA) value the fixture stores for a golden weight: visibly different. */
export function rawOf(values: Float32Array): Float32Array {
  return values.map((v, i) => v * 0.5 + (i % 7) * 0.01);
}

/** Deterministic filler values. */
function filler(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.05);
}

export interface Magvit2ReleaseOptions {
  /** A pickled numpy object among the weights (refused). */
  foreignInWeights?: boolean;
  /** The old code's persistent LFQ mask buffer, MSB-first (quantize.mask = 2^(D−1) … 1). */
  msbMask?: boolean;
  /** Leave out the EMA copies. */
  noEma?: boolean;
  zip64?: boolean;
}

/** An Open-MAGVIT2 Lightning checkpoint of golden case `name` (magvit2_video / magvit2_image) at `path`. */
export function writeMagvit2Checkpoint(path: string, name: string, opts: Magvit2ReleaseOptions = {}): string {
  const g = readGolden(golden(name));
  const params = g.params();
  const st = new Storages();
  const sd: [string, PyW][] = [];
  for (const [k, t] of params) sd.push([k, st.f32(rawOf(f32(t)), [...t.shape], true)]);
  const disc: [string, number[]][] = [
    ['loss.discriminator.main.0.weight', [16, 3, 4, 4]],
    ['loss.discriminator.main.0.bias', [16]],
    ['loss.perceptual_loss.net.slice1.0.weight', [8, 3, 3, 3]],
  ];
  disc.forEach(([k, shape], i) => {
    sd.push([
      k,
      st.f32(
        filler(
          shape.reduce((a, b) => a * b, 1),
          i,
        ),
        shape,
        true,
      ),
    ]);
  });
  if (opts.msbMask) {
    const bits = (g.config as { embed_dim: number }).embed_dim;
    const mask = BigInt64Array.from({ length: bits }, (_, i) => 2n ** BigInt(bits - 1 - i));
    sd.push(['quantize.mask', new TensorW(st.make('I64', bytesOf(mask)), [bits], [1])]);
  }
  if (opts.foreignInWeights)
    sd.push(['encoder.extra', new ObjW('numpy.core.multiarray', '_reconstruct', 'reduce', [0])]);
  if (!opts.noEma) {
    sd.push(['model_ema.decay', new TensorW(st.make('F32', bytesOf(Float32Array.of(0.999))), [], [])]);
    sd.push(['model_ema.num_updates', new TensorW(st.make('I32', bytesOf(Int32Array.of(-1))), [], [])]);
    // The 1-D EMA buffers share one storage at offsets; 2-D ones are stored transposed (a strided view).
    const vectors = [...params].filter(([, t]) => t.rank === 1);
    const all = new Float32Array(vectors.reduce((n, [, t]) => n + t.size, 0));
    let at = 0;
    const offsets = new Map<string, number>();
    for (const [k, t] of vectors) {
      all.set(f32(t), at);
      offsets.set(k, at);
      at += t.size;
    }
    const shared = st.make('F32', bytesOf(all));
    for (const [k, t] of params) {
      const key = `model_ema.${k.replaceAll('.', '')}`;
      const shape = [...t.shape];
      if (t.rank === 1) sd.push([key, new TensorW(shared, shape, [1], offsets.get(k)!)]);
      else if (t.rank === 2) {
        const [a, b] = shape as [number, number];
        const v = f32(t);
        const tr = new Float32Array(a * b);
        for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) tr[j * a + i] = v[i * b + j]!;
        sd.push([key, new TensorW(st.make('F32', bytesOf(tr)), shape, [1, a])]);
      } else sd.push([key, st.f32(f32(t).slice(), shape)]);
    }
    for (const [k, shape] of disc)
      sd.push([
        `model_ema.${k.replaceAll('.', '')}`,
        st.f32(
          filler(
            shape.reduce((a, b) => a * b, 1),
            9,
          ),
          shape,
        ),
      ]);
  }
  const step = st.make('F32', bytesOf(Float32Array.of(1000)));
  const root = new Dict([
    ['epoch', 10],
    ['global_step', 12345],
    ['pytorch-lightning_version', '2.1.2'],
    ['state_dict', stateDict(sd)],
    [
      'loops',
      new Dict([['fit_loop', new Dict([['epoch_progress', new Dict([['total', new Dict([['ready', 11]])]])]])]]),
    ],
    [
      'callbacks',
      new Dict([["ModelCheckpoint{'monitor': None, 'mode': 'min'}", new Dict([['best_model_score', null]])]]),
    ],
    [
      'optimizer_states',
      [
        new Dict([
          [
            'state',
            new Dict([
              [
                0,
                new Dict([
                  ['step', new TensorW(step, [], [])],
                  ['exp_avg', st.f32(filler(4, 3), [4])],
                ]),
              ],
            ]),
          ],
          [
            'param_groups',
            [
              new Dict([
                ['lr', new FloatW(1e-4)],
                ['betas', new Tuple([new FloatW(0.5), new FloatW(0.9)])],
                ['params', [0]],
              ]),
            ],
          ],
        ]),
      ],
    ],
    ['lr_schedulers', []],
    ['hparams_name', 'kwargs'],
    [
      'hyper_parameters',
      new Dict([
        [
          'args',
          new ObjW(
            'argparse',
            'Namespace',
            'newobj',
            [],
            new Dict([
              ['lr', new FloatW(1e-4)],
              ['name', 'video'],
            ]),
          ),
        ],
        ['mean', new ObjW('numpy.core.multiarray', '_reconstruct', 'reduce', [new ObjW('numpy', 'ndarray', 'newobj')])],
      ]),
    ],
  ]);
  return writeTorchSave(path, root, { name: 'checkpoint', zip64: opts.zip64 });
}

/** The repository-style YAML (Lightning CLI: trainer, model.class_path/init_args, data) of golden case `name`. */
export function magvit2Yaml(name: string, overrides: { classPath?: string; ch?: number } = {}): string {
  const c = readGolden(golden(name)).config as {
    ddconfig: Record<string, unknown>;
    n_embed: number;
    embed_dim: number;
  };
  const video = name.includes('video');
  const dd: Record<string, unknown> = { ...c.ddconfig, ...(overrides.ch ? { ch: overrides.ch } : {}) };
  const classPath = overrides.classPath ?? `src.Open_MAGVIT2.models.${video ? 'video_lfqgan' : 'lfqgan'}.VQModel`;
  return [
    'seed_everything: true',
    'trainer:',
    '  accelerator: gpu',
    '  precision: 16-mixed',
    'model:',
    `  class_path: ${classPath}`,
    '  init_args:',
    '    ddconfig:',
    '      double_z: False',
    ...['z_channels', 'resolution', 'in_channels', 'out_ch', 'ch', 'num_res_blocks'].map((k) => `      ${k}: ${dd[k]}`),
    `      ch_mult: [${(dd.ch_mult as number[]).join(',')}]  # num_down = len(ch_mult)-1`,
    '    lossconfig:',
    '      target: src.Open_MAGVIT2.modules.losses.vqperceptual.VQLPIPSWithDiscriminator',
    '      params:',
    '        disc_start: 0',
    `    n_embed: ${c.n_embed}`,
    `    embed_dim: ${c.embed_dim}`,
    '    learning_rate: 1e-4',
    '    sample_minimization_weight: 1.0',
    '    batch_maximization_weight: 1.0',
    '    use_ema: True',
    '    resume_lr:',
    'data:',
    '  class_path: main.DataModuleFromConfig',
    '  init_args:',
    '    batch_size: 2',
    '    train:',
    '      target: src.Open_MAGVIT2.data.imagenet.ImageNetTrain',
    '      params:',
    '        config:',
    `          size: ${dd.resolution}`,
    ...(video ? ['          sequence_length: 17'] : []),
    '',
  ].join('\n');
}

/**
 * A LARP tokenizer folder as PyTorchModelHubMixin saves it, from the golden larp_tokenizer case; `prior` names a
 * prior in config.json whose weights the file does not hold.
 */
export function writeLarpFolder(dir: string, opts: { prior?: string } = {}): string {
  const g = readGolden(golden('larp_tokenizer'));
  mkdirSync(dir, { recursive: true });
  const config = opts.prior ? { ...g.config, prior_model: { name: opts.prior, n_rounds: 2 } } : g.config;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const tensors = new Map(
    [...g.params()].map(([k, t]) => [
      k,
      {
        dtype: t.dtype === 'int64' ? ('I64' as const) : ('F32' as const),
        shape: [...t.shape],
        data: bytesOf(t.data as Float32Array | BigInt64Array),
      },
    ]),
  );
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}
