import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { type GptcSize, LarpModel, parseLarpConfig, priorPredict, topkAccuracy } from './index.js';
import type { GoldenFile, ParityRunner } from '../../parity/index.js';

/**
 * LARP parity (hywang66/LARP @ 8aaed63): 'larp_tokenizer' runs encode / decode / decode_from_bottleneck in eval
 * mode with deterministic SVQ; 'larp_prior' runs the teacher-forced GPTC prior on given indices. Both build the
 * model from the file's config and load every param.* (buffers included) strictly.
 */
function build(g: GoldenFile): LarpModel {
  const sizes = g.metadata.gptc_size ? (JSON.parse(g.metadata.gptc_size) as Record<string, GptcSize>) : {};
  const model = new LarpModel(parseLarpConfig(g.config, sizes));
  model.loadStateDict(g.params(), { strict: true, source: g.path });
  model.eval();
  model.quantizer.deterministic = true;
  return model;
}

function collect(names: string[], values: Tensor[]): Map<string, Tensor> {
  return new Map(names.map((n, i) => [n, values[i]!]));
}

const larpTokenizer: ParityRunner = (g) => {
  const model = build(g);
  const names = [
    'output.encoded',
    'output.indices',
    'output.regularized_z',
    'output.loss_commit',
    'output.loss_codebook',
    'output.loss_q',
    'output.recon',
    'output.recon_from_indices',
  ];
  const run = E.jit(
    (x: Tensor, idx: Tensor) => {
      const enc = model.encode(x);
      const recon = model.decode(enc.encoded).video;
      return [
        enc.encoded,
        enc.indices,
        enc.regularized_z,
        enc.lossCommit,
        enc.lossCodebook,
        enc.lossQ,
        recon,
        model.decodeIndices(idx),
      ];
    },
    { name: 'larp_tokenizer_parity' },
  );
  return collect(names, run(g.get('input.x'), g.get('output.indices')) as Tensor[]);
};

const larpPrior: ParityRunner = (g) => {
  const model = build(g);
  const names = [
    'output.ar_pred',
    'output.logits',
    'output.loss_latent_ce',
    'output.prior_top1_acc',
    'output.prior_top5_acc',
  ];
  const run = E.jit(
    (indices: Tensor) => {
      const arInput = model.quantizer.codebookEntry(indices);
      const { pred, logits } = priorPredict(model, arInput);
      const labels = E.narrow(indices, 1, 1, indices.shape[1]! - 1);
      return [
        pred,
        logits,
        E.crossEntropy(logits, labels),
        topkAccuracy(logits, labels, 1),
        topkAccuracy(logits, labels, 5),
      ];
    },
    { name: 'larp_prior_parity' },
  );
  return collect(names, run(g.get('input.indices')) as Tensor[]);
};

export const larpParity: Record<string, ParityRunner> = { larp_tokenizer: larpTokenizer, larp_prior: larpPrior };
