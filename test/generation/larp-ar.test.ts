import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { parityModel } from '../../src/generation/kinds.js';
import {
  checkLarpArWeights,
  LARP_L_LONG_AR,
  LARP_L_LONG_AR_FP,
  larpArParameterCount,
  larpArWeightShapes,
  parseLarpArConfig,
  weightProblemMessage,
} from '../../src/generation/larp-ar/config.js';
import { LarpArDecoder } from '../../src/generation/larp-ar/decoder.js';
import { larpArClass, larpArGenerateSteps } from '../../src/generation/larp-ar/generate.js';
import { LarpAr } from '../../src/generation/larp-ar/model.js';
import { larpArFromHubFolder, loadLarpAr, writeLarpArDir } from '../../src/generation/larp-ar/model-dir.js';
import { sampleLarpAr } from '../../src/generation/larp-ar/sample.js';
import { UCF101_CLASSES } from '../../src/generation/larp-ar/ucf101.js';
import { decodeAgreement } from '../../src/generation/lm-decoder.js';
import type { Frame } from '../../src/io/frame.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { saveTensors } from '../../src/nn/weights-file.js';
import { readGolden, runParity } from '../../src/parity/golden.js';
import { readTokenFile } from '../../src/io/tokenfile.js';
import { LarpTokenizer } from '../../src/tokenizers/larp/tokenizer.js';
import { runSteps } from '../../src/util/steps.js';
import { vtok } from '../cli/run-vtok.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';
import { tinyLarp } from '../tokenizers/tiny-configs.js';

const golden = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/golden/${name}`, import.meta.url));
const AR = golden('larp_ar.safetensors'),
  FP = golden('larp_ar_fp.safetensors');
const dir = tempDir('larp-ar');

/** The golden file's model, its weights loaded. */
function goldenModel(path: string): LarpAr {
  const g = readGolden(path);
  const m = new LarpAr(parseLarpArConfig(g.config));
  m.loadStateDict(g.params(), { strict: true });
  return m.eval();
}

const argmaxRow = (a: ArrayLike<number>, o: number, n: number) => {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[o + j]! > a[o + best]!) best = j;
  return best;
};

/** A vtok LARP tokenizer run directory of `tokens` tokens over `codes` codes (random weights). */
function tokenizerDir(name: string, tokens: number, codes: number): string {
  E.seed(1);
  const config = tinyLarp(tokens);
  const reg = (config.bottleneck as { args: { regularizer: { args: Record<string, unknown> } } }).args.regularizer;
  reg.args.codebook_size = codes;
  const tok = LarpTokenizer.fromConfig(config);
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), JSON.stringify({ model: { kind: 'larp', config } }));
  saveCheckpoint(d, { step: 0, weights: { model: tok.model.stateDict() }, optimizers: {}, state: {} }, { best: true });
  return d;
}

/** A folder as huggingface_hub's mixin writes LARP_AR: config.json (flat ModelArgs) + model.safetensors. */
function hubFolder(name: string, config: Record<string, unknown>, weights: Map<string, Tensor>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), JSON.stringify(config));
  saveTensors(join(d, 'model.safetensors'), weights, { format: 'pt' });
  return d;
}

describe('LARP AR: parity with the reference', () => {
  for (const [name, file] of [
    ['larp_ar', AR],
    ['larp_ar_fp', FP],
  ] as const) {
    it(`${name}: every output within 1e-4 of the reference (golden README's tolerance)`, () => {
      const report = runParity(file, 1e-4);
      assert.ok(report.pass, JSON.stringify(report.outputs));
      const names = report.outputs.map((o) => o.name).sort();
      assert.deepEqual(
        names,
        name === 'larp_ar'
          ? ['output.cached_logits', 'output.cfg_logits', 'output.logits', 'output.uncond_logits']
          : ['output.logits'],
      );
      for (const o of report.outputs) assert.ok(o.maxAbsError < 1e-4, `${o.name}: ${o.maxAbsError}`);
    });
  }

  it('frame prediction through the KV cache (prefill on the condition, then token by token): the full pass', () => {
    const g = readGolden(FP),
      m = goldenModel(FP);
    const idx = Int32Array.from(E.toArray(g.get('input.idx'))),
      cond = Int32Array.from(E.toArray(g.get('input.cond')));
    const want = E.toArray(g.get('output.logits'));
    const [B, n] = g.get('input.idx').shape as [number, number];
    const V = 300,
      range = { lo: 0, hi: V };
    const dec = new LarpArDecoder(m);
    const { cache, logits } = dec.prefill({ cond, batch: B }, 6 + n, range);
    let worst = 0;
    const compare = (l: Float32Array, j: number) => {
      for (let b = 0; b < B; b++)
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(l[b * V + v]! - want[(b * (n + 1) + j) * V + v]!));
    };
    compare(logits, 0);
    for (let j = 0; j < n; j++)
      compare(
        dec.step(
          cache,
          Int32Array.from({ length: B }, (_, b) => idx[b * n + j]!),
          range,
        ),
        j + 1,
      );
    assert.ok(worst < 1e-4, `cached vs reference: ${worst}`);
    assert.equal(dec.compiledPrograms, 2);
    assert.throws(() => dec.prefill({ classIds: Int32Array.of(0) }, 8, range), /conditioned on tokens, not classes/);
    assert.throws(() => dec.prefill({ cond: Int32Array.of(1, 2), batch: 1 }, 8, range), /must be 1 rows of 6 ids/);
    assert.throws(
      () => dec.prefill({ cond: new Int32Array(6).fill(301), batch: 1 }, 8, range),
      /301 outside \[0, 300\]/,
    );
    dec.dispose();
  });
});

describe('LARP AR: configs and shapes', () => {
  it('the weight shapes computed from a config are the built module’s, for both model types', () => {
    for (const file of [AR, FP]) {
      const g = readGolden(file);
      const c = parseLarpArConfig(g.config);
      const built = new Map(new LarpAr(c).namedParams().map(([k, p]) => [k, [...p.shape]]));
      assert.deepEqual(new Map([...larpArWeightShapes(c)].sort()), new Map([...built].sort()));
      const file_ = new Map([...g.params()].map(([k, t]) => [k, [...t.shape]]));
      assert.deepEqual(new Map([...larpArWeightShapes(c)].sort()), new Map([...file_].sort()), 'the reference names');
    }
  });

  it('the released LARP-L-long-AR and -AR-FP, by shapes and names, without building them', () => {
    const before = process.memoryUsage().rss;
    const ucf = larpArWeightShapes(LARP_L_LONG_AR),
      fp = larpArWeightShapes(LARP_L_LONG_AR_FP);
    assert.equal(larpArParameterCount(LARP_L_LONG_AR), 631_975_680); // "632M" in the reference's comment
    assert.equal(larpArParameterCount(LARP_L_LONG_AR_FP), 633_157_120);
    assert.equal(ucf.size, 3 + 30 * 7 + 2);
    assert.deepEqual(ucf.get('layers.29.attention.wqkv.weight'), [3840, 1280]);
    assert.deepEqual(ucf.get('layers.29.feed_forward.w1.weight'), [3584, 1280]);
    assert.deepEqual(ucf.get('layers.0.feed_forward.w2.weight'), [1280, 3584]);
    assert.deepEqual(ucf.get('cls_embedding.embedding_table.weight'), [102, 1280], '101 classes + the null class');
    assert.deepEqual(ucf.get('abs_pe'), [1, 1024, 1280]);
    assert.deepEqual(ucf.get('output.weight'), [8192, 1280]);
    assert.equal(fp.has('cls_embedding.embedding_table.weight'), false);
    assert.deepEqual(fp.get('tok_embeddings.weight'), [8193, 1280], 'the codes + the separator');
    assert.deepEqual(fp.get('abs_pe'), [1, 2048, 1280], '1,025 condition positions + 1,023 tokens');
    assert.ok(process.memoryUsage().rss - before < 100e6, 'nothing of the model was allocated');
    // a released file's header (2.5 GB of float32) against the config: one error lists every problem
    const header = new Map([...ucf].map(([k, s]) => [k, { dtype: 'F32', shape: s }]));
    assert.equal(weightProblemMessage(checkLarpArWeights(LARP_L_LONG_AR, header)), null);
    header.delete('norm.weight');
    header.set('layers.3.attention.wq.weight', { dtype: 'F32', shape: [1280, 1280] });
    header.set('output.weight', { dtype: 'F32', shape: [8193, 1280] });
    header.set('abs_pe', { dtype: 'I64', shape: [1, 1024, 1280] });
    assert.equal(
      weightProblemMessage(checkLarpArWeights(LARP_L_LONG_AR, header)),
      'the weights do not fit the config (missing 1: norm.weight; unexpected 1: layers.3.attention.wq.weight; ' +
        'mis-shaped 2: abs_pe: the file has I64[1,1024,1280], the config needs float[1,1024,1280], ' +
        'output.weight: the file has F32[8193,1280], the config needs float[8192,1280])',
    );
  });

  it('refuses configs it does not build, naming the field', () => {
    const ok = readGolden(AR).config;
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, n_kv_head: 2 }, /n_kv_head 2 ≠ n_head 4: grouped-query attention is not supported/],
      [{ ...ok, model_type: 't2v' }, /model_type "t2v": the reference builds only "class_cond"/],
      [{ ...ok, cls_token_num: 2 }, /cls_token_num 2: a class-conditional model has one class position/],
      [{ ...ok, class_dropout_prob: 0 }, /class_dropout_prob 0: the class embedding has no null class/],
      [{ ...ok, dim: 65 }, /dim 65 is not divisible by n_head 4/],
      [{ ...ok, n_layer: 0 }, /"n_layer" must be a positive integer, got 0/],
      [{ ...ok, vocab: 3 }, /unknown field\(s\) vocab/],
      [{ ...ok, use_fixed_pe: 'yes' }, /"use_fixed_pe" must be true or false/],
    ];
    for (const [c, re] of bad) assert.throws(() => parseLarpArConfig(c), re);
    assert.equal(parseLarpArConfig({ dim: 64, n_layer: 1, n_head: 4 }).vocab_size, 8192, "ModelArgs' defaults");
  });
});

describe('LARP AR: sampling', () => {
  it('guided greedy draws follow u + s·(c − u) of the full pass, and the cfg_interval schedule', () => {
    const m = goldenModel(AR);
    const N = 12,
      V = 300,
      scale = 1.25;
    for (const interval of [-1, 2]) {
      const ids = sampleLarpAr(m, { classes: [3], cfgScale: scale, cfgInterval: interval, tokens: N, temperature: 0 });
      assert.equal(ids.length, N);
      const idx = E.concrete(ids.slice(0, N - 1), [1, N - 1], 'int32');
      const cond = E.toArray(m.logitsFor(idx, E.tensor([3], [1], 'int64')));
      const uncond = E.toArray(m.logitsFor(idx, E.tensor([7], [1], 'int64')));
      const guided = cond.map((c, i) => uncond[i]! + scale * (c - uncond[i]!));
      for (let n = 0; n < N; n++) {
        const useGuide = interval < 0 || n - 1 <= interval;
        assert.equal(ids[n], argmaxRow(useGuide ? guided : cond, n * V, V), `token ${n} (cfg_interval ${interval})`);
      }
    }
  });

  it('draws are seeded, rows prompt-major; the reference’s refusals', () => {
    const m = goldenModel(AR);
    const a = sampleLarpAr(m, { classes: [1, 2], samples: 2, seed: 4, tokens: 6, cfgScale: 1.25, topK: 50 });
    const b = sampleLarpAr(m, { classes: [1, 2], samples: 2, seed: 4, tokens: 6, cfgScale: 1.25, topK: 50 });
    assert.deepEqual(a, b);
    assert.equal(a.length, 4 * 6);
    assert.notDeepEqual(a, sampleLarpAr(m, { classes: [1, 2], samples: 2, seed: 5, tokens: 6, cfgScale: 1.25 }));
    assert.throws(() => sampleLarpAr(m, { classes: [1], cfgScale: 0.5 }), /scale must be at least 1/);
    assert.throws(() => sampleLarpAr(m, { classes: [1], tokens: 21 }), /tokens must be an integer in \[1, 20\]/);
    assert.throws(() => sampleLarpAr(m, { classes: [8] }), /class 8 outside \[0, 7\]/);
    const fp = goldenModel(FP);
    const cond = new Int32Array(6).fill(5);
    cond[5] = 300;
    assert.throws(() => sampleLarpAr(fp, { conds: [cond], cfgScale: 1.25 }), /frame-prediction model samples without/);
    assert.equal(sampleLarpAr(fp, { conds: [cond], samples: 3, tokens: 4 }).length, 12);
  });

  it('int8 decode steps agree with fp32 on most top-1 choices', () => {
    const m = goldenModel(AR);
    const ref = new LarpArDecoder(m),
      q = new LarpArDecoder(m, { precision: 'int8' });
    const pick = (l: Float32Array, rows: number, w: number) =>
      Int32Array.from({ length: rows }, (_, r) => argmaxRow(l, r * w, w));
    const a = decodeAgreement(ref, q, { classIds: Int32Array.of(0, 3, 7) }, 15, { lo: 0, hi: 300 }, pick);
    assert.equal(a.compared, 45);
    // the golden weights are large (N(0, 0.2²)), so the int8 rounding shows more than on a trained model
    assert.ok(a.top1 >= 0.8, `top-1 agreement ${a.top1}`);
    assert.ok(a.meanKl < 0.02, `KL ${a.meanKl}`);
    ref.dispose();
    q.dispose();
  });
});

describe('LARP AR: model directories', () => {
  const g = readGolden(AR);

  it('a mixin folder imports to a model directory that reproduces the golden case (vtok parity --model)', () => {
    const hub = hubFolder('hub-ar', g.config, g.params());
    const tok = tokenizerDir('tok-300', 20, 300);
    const out = join(dir, 'model-ar');
    const read = larpArFromHubFolder(hub, out, { tokenizer: tok, source: { repository: 'test/hub-ar' } });
    assert.equal(read.config.num_classes, 7);
    assert.deepEqual(readdirSync(out).sort(), ['checkpoints', 'config.json']);
    const report = runParity(AR, 1e-4, (c) => parityModel(out, c));
    assert.ok(report.pass);
    assert.equal(report.model, out);
    assert.throws(
      () => runParity(FP, 1e-4, (c) => parityModel(out, c)),
      new RegExp(
        "config is not the golden case's, so its outputs cannot match: num_classes: 101 in the golden case, 7 in " +
          'the model; cls_token_num: 6 .*; frame_prediction: true in the golden case, false in the model$',
      ),
    );
    // the tokenizer's golden case through a model directory of another kind is refused
    assert.throws(
      () => runParity(golden('larp_tokenizer.safetensors'), 1e-4, (c) => parityModel(out, c)),
      /larp-ar model directory runs the cases larp_ar, larp_ar_fp, not larp_tokenizer/,
    );
    // a wrapped config ({"config": {...}}, older huggingface_hub) reads the same
    const wrapped = hubFolder('hub-wrapped', { config: g.config }, g.params());
    assert.equal(larpArFromHubFolder(wrapped, join(dir, 'model-wrapped'), { tokenizer: tok }).config.dim, 64);
  });

  it('parity --model also runs a tokenizer case through a tokenizer run directory', () => {
    const tg = readGolden(golden('larp_prior.safetensors'));
    const run = join(dir, 'tok-golden');
    mkdirSync(run);
    writeFileSync(join(run, 'config.json'), JSON.stringify({ model: { kind: 'larp', config: tg.config } }));
    saveCheckpoint(run, { step: 0, weights: { model: tg.params() }, optimizers: {}, state: {} }, { best: true });
    const report = runParity(golden('larp_prior.safetensors'), 1e-4, (c) => parityModel(run, c));
    assert.ok(report.pass, JSON.stringify(report.outputs));
    assert.equal(report.model, run);
    assert.throws(
      () => runParity(AR, 1e-4, (c) => parityModel(run, c)),
      /a larp tokenizer runs the cases .*not larp_ar/,
    );
  });

  it('a mixin folder whose weights do not fit its config: every problem in one error, nothing left at out', () => {
    const tok = tokenizerDir('tok-300b', 20, 300);
    const w = new Map(g.params());
    w.delete('norm.weight');
    w.set('layers.0.attention.wq.weight', E.zeros([64, 64]));
    w.set('output.weight', E.zeros([301, 64]));
    const hub = hubFolder('hub-bad', g.config, w);
    const out = join(dir, 'model-bad');
    assert.throws(
      () => larpArFromHubFolder(hub, out, { tokenizer: tok }),
      new RegExp(
        'missing 1: norm\\.weight; unexpected 1: layers\\.0\\.attention\\.wq\\.weight; mis-shaped 1: ' +
          'output\\.weight: the file has F32\\[301,64\\], the config needs float\\[300,64\\]',
      ),
    );
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('model-bad')),
      [],
    );
    const small = tokenizerDir('tok-32', 20, 32);
    assert.throws(
      () => larpArFromHubFolder(hubFolder('hub-ok', g.config, g.params()), out, { tokenizer: small }),
      /the tokenizer gives 20 tokens of 32 codes; the model draws 20 of 300/,
    );
    assert.equal(existsSync(out), false);
    const existing = join(dir, 'model-ar-exists');
    mkdirSync(existing);
    assert.throws(
      () => writeLarpArDir(existing, { config: g.config, weights: g.params(), tokenizer: tok }),
      /already exists/,
    );
  });

  it('generates class-conditional clips by class name, and frame predictions from a video', () => {
    E.seed(3);
    const tok = tokenizerDir('tok-8', 8, 32);
    // a tiny class model over the tokenizer's 8 tokens of 32 codes, with UCF-101's 101 classes
    const ucf = { dim: 32, n_layer: 1, n_head: 2, multiple_of: 32, vocab_size: 32, max_seq_len: 8, num_classes: 101 };
    const classDir = join(dir, 'model-ucf');
    writeLarpArDir(classDir, {
      config: ucf,
      weights: new LarpAr(parseLarpArConfig(ucf)).stateDict(),
      tokenizer: tok,
      classNames: [...UCF101_CLASSES],
    });
    const gen = loadLarpAr(classDir);
    assert.equal(gen.config.sampling.cfg_scale, 1.25, "the reference's UCF-101 guidance");
    assert.equal(larpArClass(gen, 'PlayingGuitar'), 62);
    assert.equal(larpArClass(gen, 'playingguitar'), 62);
    assert.equal(larpArClass(gen, '7'), 7);
    assert.throws(() => larpArClass(gen, 'Guitar'), /unknown class "Guitar" \(did you mean PlayingGuitar\?\)/);
    assert.throws(() => larpArClass(gen, 101), /outside the model's 101 classes/);
    const r = runSteps(larpArGenerateSteps(gen, { task: 'class', label: 'PlayingGuitar', samples: 2, seed: 1 }));
    assert.deepEqual(r.frames.shape, [2, 3, 4, 8, 8]);
    assert.deepEqual(r.tokens[1]![0]!.grid, [8]);
    assert.ok(r.frames.data.every(Number.isFinite));
    assert.deepEqual(r.settings, {
      class: 62,
      className: 'PlayingGuitar',
      cfg: 1.25,
      cfgInterval: -1,
      temperature: 1,
      topK: 0,
      topP: 1,
    });
    const again = runSteps(larpArGenerateSteps(gen, { task: 'class', label: 62, samples: 2, seed: 1 }));
    assert.deepEqual(again.tokens[1]![0]!.ids, r.tokens[1]![0]!.ids);
    assert.throws(
      () => runSteps(larpArGenerateSteps(gen, { task: 'continue', samples: 1 })),
      /class-conditional model: use --task class/,
    );
    const int8 = runSteps(larpArGenerateSteps(gen, { task: 'class', label: 3, precision: 'int8', temperature: 0 }));
    assert.deepEqual(int8.frames.shape, [1, 3, 4, 8, 8]);

    // frame prediction: the condition is the tokenizer's 8 tokens + the separator
    const fpCfg = { ...ucf, cls_token_num: 9, frame_prediction: true };
    const fpDir = join(dir, 'model-fp');
    const fpWeights = new LarpAr(parseLarpArConfig(fpCfg)).stateDict();
    const tooMany = join(dir, 'model-fp-5');
    writeLarpArDir(tooMany, { config: fpCfg, weights: fpWeights, tokenizer: tok });
    assert.throws(() => loadLarpAr(tooMany), /cond_frames 5 must be in \[1, 4\] \(the tokenizer's clip\)/);
    writeLarpArDir(fpDir, { config: fpCfg, weights: fpWeights, tokenizer: tok, condFrames: 3 });
    const fp = loadLarpAr(fpDir);
    assert.equal(fp.config.sampling.cfg_scale, 1);
    const frame = (v: number): Frame => ({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(v) });
    const video = [10, 60, 110, 160, 210, 250].map(frame);
    const p = runSteps(larpArGenerateSteps(fp, { task: 'continue', video, seed: 2 }));
    assert.deepEqual(p.frames.shape, [1, 3, 4, 8, 8]);
    assert.equal(p.sequences[0]!.length, 9 + 8, 'condition (tokens + separator) and the drawn clip');
    assert.equal(p.sequences[0]![8], 32, 'the separator id is vocab_size');
    assert.throws(() => {
      const wide = { width: 16, height: 8, data: new Uint8Array(384) };
      return runSteps(larpArGenerateSteps(fp, { task: 'continue', video: [wide], condFrames: 1 }));
    }, /the video is 16×8; the tokenizer takes 8×8/);
    assert.throws(
      () => runSteps(larpArGenerateSteps(fp, { task: 'continue', video, condFrames: 5 })),
      /condFrames must be in \[1, 4\]/,
    );
  });
});

describe('LARP AR: the CLI', () => {
  it('vtok generate --task class --label <name>, and vtok parity <golden> --model <dir>', async () => {
    E.seed(5);
    const tok = tokenizerDir('tok-cli', 8, 32);
    const ucf = { dim: 32, n_layer: 1, n_head: 2, multiple_of: 32, vocab_size: 32, max_seq_len: 8, num_classes: 101 };
    const model = join(dir, 'cli-ucf');
    writeLarpArDir(model, {
      config: ucf,
      weights: new LarpAr(parseLarpArConfig(ucf)).stateDict(),
      tokenizer: tok,
      classNames: [...UCF101_CLASSES],
    });
    const out = join(dir, 'guitar.gif');
    const r = await vtok(
      'generate',
      '--task',
      'class',
      '--label',
      'PlayingGuitar',
      '--model',
      model,
      '-o',
      out,
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(summary.frames, 4);
    assert.equal(summary.size, '8x8');
    const tokens = await readTokenFile(join(dir, 'guitar.vtok'));
    assert.equal(tokens.header.extra?.className, 'PlayingGuitar');
    assert.equal(tokens.header.extra?.cfg, 1.25, "the model directory's guidance");
    assert.deepEqual(tokens.clips[0]!.grid, [8]);
    const refused: [string[], RegExp][] = [
      [['--task', 'class', '--label', 'Guitar'], /unknown class "Guitar" \(did you mean PlayingGuitar\?\)/],
      [['--task', 'class', '--prompt', 'x', '--label', '1'], /task class takes no --prompt \(it takes: --label\)/],
      [['--task', 't2v', '--prompt', 'x'], /task t2v is not a LARP AR task \(class, continue\)/],
      [['--task', 'class', '--label', '1', '--seconds', '3'], /takes no --seconds/],
    ];
    for (const [args, re] of refused) {
      const bad = await vtok('generate', ...args, '--model', model, '-o', join(dir, 'no.gif'));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, re);
    }
    assert.equal(existsSync(join(dir, 'no.gif')), false);
    // frame prediction from a video file: read at the tokenizer's size (short side resized, centre crop)
    const fpCfg = { ...ucf, cls_token_num: 9, frame_prediction: true };
    const fpModel = join(dir, 'cli-fp');
    const fpWeights = new LarpAr(parseLarpArConfig(fpCfg)).stateDict();
    writeLarpArDir(fpModel, { config: fpCfg, weights: fpWeights, tokenizer: tok, condFrames: 2 });
    const clip = await makeTestVideo(join(dir, 'clip.mp4'), { frames: 6 });
    const cont = await vtok(
      'generate',
      '--task',
      'continue',
      '--video',
      clip,
      '--model',
      fpModel,
      '-o',
      join(dir, 'c.gif'),
    );
    assert.equal(cont.code, 0, cont.stderr);
    const fpBad = await vtok(
      'generate',
      '--task',
      'class',
      '--label',
      '1',
      '--model',
      fpModel,
      '-o',
      join(dir, 'no.gif'),
    );
    assert.match(fpBad.stderr, /frame-prediction model \(LARP AR-FP\): use --task continue with a video/);
    // the golden case's inputs through an imported model directory
    const g = readGolden(AR);
    const imported = join(dir, 'cli-imported');
    const hub = hubFolder('cli-hub', g.config, g.params());
    const noTok = await vtok('import', hub, '--out', imported);
    assert.equal(noTok.code, 1);
    assert.match(noTok.stderr, /decodes with a LARP tokenizer: give its imported directory with --tokenizer/);
    const imp = await vtok('import', hub, '--tokenizer', tokenizerDir('tok-cli-300', 20, 300), '--out', imported);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /LARP AR class-conditional \(larp-ar, [\d,]+ parameters; licence MIT\)/);
    const source = JSON.parse(readFileSync(join(imported, 'config.json'), 'utf8')).source;
    assert.equal(source.licence, 'MIT');
    assert.deepEqual(
      source.files.map((f: { name: string }) => f.name),
      ['config.json', 'model.safetensors'],
    );
    const p = await vtok('parity', AR, '--model', imported);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /PASS: larp_ar, 4 of 4 outputs match/);
    assert.match(p.stdout, /weights and config of .*cli-imported/);
    const wrong = await vtok('parity', golden('larp_tokenizer.safetensors'), '--model', imported);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /runs the cases larp_ar, larp_ar_fp, not larp_tokenizer/);
  });
});
