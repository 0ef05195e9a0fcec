import { basename } from 'node:path';
import { openSafetensors, type SafetensorsFile } from '../../io/safetensors-file.js';
import type { SafeTensor } from '../../io/safetensors.js';
import { fromFloat32, toFloat32 } from '../../io/tensor-data.js';
import { stateDictOf } from '../../io/torch-checkpoint.js';
import { VtokError } from '../../util/errors.js';
import { expectedWeights, matchWeights, type ReleaseImporter, type WeightSource } from '../import-plan.js';

/**
 * LARP's released tokenizers (hywang66/LARP-L-long-tokenizer, MIT) as huggingface_hub's PyTorchModelHubMixin saves
 * them: `config.json`, the keyword arguments of LARPTokenizer (the reference's `model.args`, which vtok's LARP config
 * reads as is), and `model.safetensors` (or the older `pytorch_model.bin`) with the module's state_dict, whose names
 * are vtok's. A config that names a prior (GPTC, used only in training) whose weights the file does not hold is
 * imported without it, and says so.
 */

/** Float weights as float32 (F16/BF16 releases included); integer buffers as they are. */
function asFloat32(t: SafeTensor): SafeTensor {
  return t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64' ? fromFloat32(toFloat32(t), t.shape) : t;
}

export const larpImporter: ReleaseImporter = {
  name: 'larp',
  accepts:
    'a LARP tokenizer folder as Hugging Face PyTorchModelHubMixin writes it (config.json with "bottleneck", and ' +
    'model.safetensors)',
  detect(src) {
    const c = src.configJson();
    return !!c && 'bottleneck' in c && 'bottleneck_token_num' in c;
  },
  plan(src, opts, note) {
    const configPath = src.file('config.json')!;
    let raw = src.configJson()!;
    if (src.config) {
      const c = src.config.content;
      if (!c || typeof c !== 'object' || Array.isArray(c) || !('bottleneck' in c))
        throw new VtokError('not a LARP tokenizer config (no "bottleneck")', src.config.path);
      raw = c as Record<string, unknown>;
    }
    const available = new Map<string, WeightSource>();
    let weightsPath: string;
    let file: SafetensorsFile | undefined;
    const st = src.file('model.safetensors');
    if (st) {
      weightsPath = st;
      const f = openSafetensors(st);
      file = f;
      for (const [name, info] of f.tensors)
        available.set(name, { shape: info.shape, dtype: info.dtype, read: () => asFloat32(f.read(name)) });
    } else {
      const ck = src.checkpoint();
      if (!ck) throw new VtokError('no model.safetensors (nor pytorch_model.bin) beside config.json', src.path);
      weightsPath = ck.path;
      for (const [name, t] of stateDictOf(ck.root, ck.path))
        available.set(name, { shape: t.shape, dtype: t.dtype, read: () => ck.read(t, name) });
    }
    try {
      const prior = (raw.prior_model as { name?: unknown } | undefined)?.name;
      const hasPrior = [...available.keys()].some((k) => k.startsWith('prior_model.'));
      let config = raw;
      if (typeof prior === 'string' && !['none', 'no', 'null', ''].includes(prior.toLowerCase()) && !hasPrior) {
        config = { ...raw, prior_model: { name: 'none' } };
        note(
          `the config names the prior ${prior} but ${basename(weightsPath)} holds none of its weights: imported ` +
            'without the prior (encoding and decoding do not use it; only training does)',
        );
      }
      const tensors = matchWeights(
        expectedWeights('larp', config, opts.half),
        available,
        `the config (${basename(src.config?.path ?? configPath)})`,
        weightsPath,
      );
      const num = (k: string, d?: number) => (typeof config[k] === 'number' ? (config[k] as number) : d);
      return {
        release: 'LARP tokenizer',
        licence: 'MIT',
        config: {
          model: { kind: 'larp', config },
          data: { size: num('input_size'), frames: num('frame_num'), channels: num('in_channels', 3) },
        },
        tensors,
        files: [
          { path: src.config?.path ?? configPath, role: 'config' },
          { path: weightsPath, role: 'weights' },
        ],
        provenance: { prior: config === raw ? (typeof prior === 'string' ? prior : 'none') : 'dropped' },
        close: () => file?.close(),
      };
    } catch (e) {
      file?.close();
      throw e;
    }
  },
};
