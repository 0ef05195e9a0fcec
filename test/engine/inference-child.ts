import { register } from 'node:module';

/**
 * Run by node-free.test.ts as its own process: loads the inference path of both tokenizers and the prefix LM with
 * every Node builtin and onnxruntime-node refused to vtok's sources (./no-node-hooks.ts), installs a stub backend
 * (no synchronous run; it records each session and answers zeros of the model's output shapes), and encodes and
 * decodes with each tokenizer built from a config and weight bytes. Prints what happened as JSON.
 */
register('./no-node-hooks.js', import.meta.url);

const E = await import('../../src/engine/core.js');
const { ONNX_DTYPE } = await import('../../src/engine/dtype.js');
const { buildForLoading, compileInference, tensorsToBytes } = await import('../../src/nn/index.js');
const { createTokenizer, tokenizerFromBytes } = await import('../../src/tokenizers/registry.js');
const { larpTrainer } = await import('../../src/tokenizers/larp/kind.js');
const { PrefixLm } = await import('../../src/generation/prefix-lm/model.js');
await import('../../src/generation/prefix-lm/decoder.js');
const { default: onnxProto } = await import('onnx-proto');
const { TINY_MAGVIT2_VIDEO } = await import('../tokenizers/tiny-configs.js');

type DType = keyof typeof ONNX_DTYPE;
const dtypeOf = new Map(Object.entries(ONNX_DTYPE).map(([d, code]) => [code, d as DType]));
const sessions: string[] = [];

E.installBackend({
  name: 'stub',
  createSession(model, _inputs, outputNames) {
    const graph = onnxProto.onnx.ModelProto.decode(model).graph!;
    sessions.push(graph.name ?? '');
    const outputs = outputNames.map((_, i) => {
      const t = graph.output![i]!.type!.tensorType!;
      const shape = t.shape!.dim!.map((d) => Number(d.dimValue));
      const dtype = dtypeOf.get(t.elemType!)!;
      return { dtype, shape };
    });
    return {
      run: async () => outputs.map(({ dtype, shape }) => ({ dtype, shape, data: E.zeros(shape, dtype).data })),
      dispose: () => {},
    };
  },
  defaultThreads: () => 1,
  int8Kernels: () => ({ weights: 'int8', reason: 'stub' }),
});

const clips = (shape: number[]) =>
  E.concrete(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape, 'float32');
const magvit2 = TINY_MAGVIT2_VIDEO;
// the tiny preset: routed init, a centred patch embedding and a prior
const larp = larpTrainer.modelConfig(larpTrainer.presets.tiny!, { size: 32, frames: 8, channels: 3 });

const results: Record<string, unknown> = {};
for (const [kind, config, clip] of [
  ['magvit2', magvit2, [1, 3, 5, 8, 8]],
  ['larp', larp, [1, 3, 8, 32, 32]],
] as const) {
  // weights to load: any of the right names and shapes (a real model's would come from a fetched file)
  const parts = tensorsToBytes(buildForLoading(() => createTokenizer(kind, config)).module.stateDict());
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    bytes.set(p, offset);
    offset += p.length;
  }
  const { tokenizer } = tokenizerFromBytes(kind, config, bytes);
  const ids = await tokenizer.encodeAsync(clips([...clip]));
  const recon = await tokenizer.decodeAsync(ids);
  results[kind] = { ids: { dtype: ids.dtype, shape: ids.shape }, recon: recon.shape };
}

const lm = new PrefixLm({ vocabSize: 32, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 16, textDim: null });
const forward = compileInference(
  lm,
  (ids: InstanceType<typeof E.Tensor>, prefixLength: InstanceType<typeof E.Tensor>) =>
    lm.forward({ ids, prefixLength }),
  'prefix_lm',
);
const logits = await forward.runAsync(E.zeros([1, 8], 'int64'), E.full([1], 2, 'int64'));
results.lm = logits.shape;

// the hooks do refuse the Node engine: proof that the imports above were checked
const blocked = await import('../../src/engine/index.js').then(
  () => null,
  (e: Error) => e.message,
);

console.log(JSON.stringify({ backend: E.backend().name, sessions, results, blocked }));
