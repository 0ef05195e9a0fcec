import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { generate } from '../../src/generation/generate.js';
import {
  LM_KIND,
  loadGenerator,
  packGenerator,
  type Generator,
  type LmDirConfig,
} from '../../src/generation/model-dir.js';
import { tokenizeCorpus } from '../../src/corpus/tokenize-corpus.js';
import { TextPrefixLm, type TextPrefixLmConfig } from '../../src/generation/prefix-lm/text-lm.js';
import { layoutForTokenizer } from '../../src/generation/vocab.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { runT2vStudy, studyGenerator, t2vMarkdown, type T2vResults } from '../../src/studies/t2v/index.js';
import { checkCheckpoint, describeCheckpoint } from '../../src/studies/t2v/checkpoint.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { tempDir } from '../io/fixtures.js';

/** The text-to-video study end to end at the micro budget on an untrained tiny prefix LM over the shipped tokenizer. */

const SHIPPED = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));

/**
 * A model directory's contents in memory: the shipped tokenizer (clips 5×64×64 gray, grid [5, 16, 16]) and an untrained
 * tiny LM.
 */
function tinyModel(): Generator {
  E.seed(0);
  const { tokenizer, module } = loadTokenizer(SHIPPED);
  const layout = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks: ['uncond', 't2v', 'fp'],
    sizes: [{ frames: 5, height: 64, width: 64 }],
  });
  const config: TextPrefixLmConfig = {
    lm: { vocabSize: layout.size, dim: 32, layers: 1, heads: 2, hidden: 64, maxLength: 1408, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 48 },
  };
  const model = new TextPrefixLm(config);
  model.eval();
  return {
    dir: 'tiny-untrained',
    model,
    layout,
    tokenizer,
    tokenizerDir: SHIPPED,
    fps: 8,
    config: { model: { kind: LM_KIND, config }, layout, tokenizer: SHIPPED, fps: 8 },
  };
}

/** The same model written as a model directory (config.json + checkpoint), as `vtok train lm` leaves one. */
function writeModelDir(dir: string, g: Generator, extra: Record<string, unknown> = {}): void {
  writeFileAtomic(
    join(dir, 'config.json'),
    JSON.stringify({ ...g.config, tokenizer: SHIPPED, ...extra } satisfies LmDirConfig),
  );
  saveCheckpoint(dir, { step: 0, weights: { model: g.model.stateDict() }, optimizers: {}, state: {} });
}

const SAMPLING = { temperature: 1, topK: 64, batch: 4 };

test("the study's batched sampling draws what generate draws for one prompt", () => {
  const model = tinyModel();
  const g = studyGenerator(model, SAMPLING);
  const prompt = 'the digit 6 moves up and down';
  const ours = g.textToVideo([prompt], { cfg: 3, seed: 11 });
  const lib = generate(model, { task: 't2v', prompt, cfg: 3, seed: 11, temperature: 1, topK: 64 });
  assert.deepEqual(ours.shape, lib.frames.shape);
  assert.deepEqual(ours.data, lib.frames.data);
  const long = g.extend(ours, { condFrames: 1, seed: 12 });
  const lib1 = { task: 't2v', prompt, cfg: 3, seed: 11, temperature: 1, topK: 64, seconds: 9 / 8, condFrames: 1 };
  const libLong = generate(model, lib1);
  assert.deepEqual(long.shape, libLong.frames.shape);
  assert.deepEqual(long.data, libLong.frames.data);
});

test("the text-hidden t2v set draws CFG's unconditional stream, whatever the captions", () => {
  const g = studyGenerator(tinyModel(), SAMPLING);
  const prompts = ['the digit 6 moves up and down', 'the digit 2 moves left and right'];
  const hidden = g.textToVideo(prompts, { cfg: 1, seed: 5, hideText: true });
  // guidance at scale 0 samples u + 0·(c − u): the unconditional stream alone, as CFG builds it
  assert.deepEqual(hidden.data, g.textToVideo(prompts, { cfg: 0, seed: 5 }).data);
  // no key of the hidden text is visible and the slot has one length, so other captions draw the same clips
  const other = ['the digit 0 moves up and down', 'the digit 9 moves left and right'];
  assert.deepEqual(hidden.data, g.textToVideo(other, { cfg: 1, seed: 5, hideText: true }).data);
  // while the visible text changes them (even an untrained model reads it)
  assert.notDeepEqual(hidden.data, g.textToVideo(prompts, { cfg: 1, seed: 5 }).data);
  assert.throws(() => g.textToVideo(prompts, { cfg: 3, seed: 5, hideText: true }), /without guidance/);
});

test('the study names the split that chose the checkpoint and refuses one it evaluates', async () => {
  const root = tempDir('t2v-checkpoint');
  const corpus = (split: string) => JSON.stringify({ kind: 'captioned-mnist', split, seed: 0, frames: 5 });
  // a run's validation shards: tokenized from split val, read back from the run's data.val when not recorded
  const val = join(root, 'val');
  await tokenizeCorpus({
    corpus: { kind: 'captioned-mnist', split: 'val', seed: 0, clips: 2 },
    model: SHIPPED,
    out: val,
    workers: 0,
    quiet: true,
  });
  const run = join(root, 'run');
  writeModelDir(run, tinyModel(), { data: { shards: val, val } });
  const fromRun = studyGenerator(loadGenerator(run), SAMPLING).validation;
  assert.equal(JSON.parse(fromRun!).split, 'val');
  assert.match(
    describeCheckpoint(fromRun),
    /^chosen by the lowest validation NLL on captioned Moving MNIST split val /,
  );
  assert.equal(describeCheckpoint(null), 'trained without validation shards, so the latest checkpoint');
  assert.doesNotThrow(() => checkCheckpoint(fromRun, run));
  assert.doesNotThrow(() => checkCheckpoint(undefined, run));
  // chosen on the test split: refused before anything runs, also once packed (pack keeps the record)
  const onTest = join(root, 'on-test');
  writeModelDir(onTest, tinyModel(), { data: { shards: val, val: null }, validation: corpus('test') });
  const packed = join(root, 'packed');
  packGenerator(onTest, packed);
  const packedConfig = JSON.parse(readFileSync(join(packed, 'config.json'), 'utf8'));
  assert.equal(packedConfig.validation, corpus('test'));
  assert.equal(packedConfig.data, undefined);
  for (const dir of [onTest, packed]) {
    const out = join(root, `study-${dir.endsWith('packed') ? 'p' : 't'}`);
    await assert.rejects(
      runT2vStudy({
        generator: studyGenerator(loadGenerator(dir), SAMPLING),
        model: dir,
        out,
        budget: 'micro',
        quiet: true,
      }),
      /chosen on captioned Moving MNIST split test, which this study evaluates; .*--split val/,
    );
    assert.ok(!existsSync(join(out, 'classifier')));
  }
  assert.throws(() => checkCheckpoint(corpus('unseen'), 'm'), /split unseen/);
});

function numbers(x: unknown, path = ''): [string, number][] {
  if (typeof x === 'number') return [[path, x]];
  if (Array.isArray(x)) return x.flatMap((v, i) => numbers(v, `${path}[${i}]`));
  if (x && typeof x === 'object') return Object.entries(x).flatMap(([k, v]) => numbers(v, path ? `${path}.${k}` : k));
  return [];
}

test(
  'vtok study t2v runs end to end at the micro budget, ' + 'writes finite results, and a re-run skips every stage',
  async () => {
    const root = tempDir('t2v-study'),
      out = join(root, 'study'),
      modelDir = join(root, 'model');
    writeModelDir(modelDir, tinyModel());
    const gen = studyGenerator(loadGenerator(modelDir), SAMPLING);
    const lines: string[] = [];
    const r = await runT2vStudy({
      generator: gen,
      model: modelDir,
      out,
      budget: 'micro',
      seed: 2,
      quiet: true,
      log: (l) => lines.push(l),
    });
    for (const f of [
      'results.json',
      'results.md',
      'samples.gif',
      'samples-cfg3-unseen.png',
      'samples-t2v-hidden.png',
      'samples-uncond-task.png',
      'frame-prediction-1.png',
      'frame-prediction-2.png',
      'long-video.png',
      'classifier/classifier.safetensors',
      'faithfulness/cfg1-test.safetensors',
      'long-video/extension-4.safetensors',
    ]) {
      assert.ok(existsSync(join(out, f)) && statSync(join(out, f)).size > 0, f);
    }
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as T2vResults;
    assert.deepEqual(saved, JSON.parse(JSON.stringify(r)));
    for (const [k, v] of numbers({ ...saved, budget: undefined })) assert.ok(Number.isFinite(v), `${k} = ${v}`);
    // every set and the real reference have the micro budget's n = 2 clips; per split: the real reference, 2 CFG
    // scales, the text-hidden t2v set and the uncond task's set (one set each, read against both splits)
    assert.equal(saved.faithfulness.clips, 2);
    assert.deepEqual(
      saved.faithfulness.rows.map((a) => `${a.arm}-${a.split}`),
      ['test', 'unseen'].flatMap((sp) =>
        ['real-other', 'cfg1', 'cfg3', 't2v-hidden', 'uncond-task'].map((a) => `${a}-${sp}`),
      ),
    );
    for (const a of saved.faithfulness.rows) {
      assert.equal(a.accuracy === null, a.arm === 'real-other');
      if (a.accuracy) {
        assert.equal(a.accuracy.clips, 2);
        for (const v of [a.accuracy.digit, a.accuracy.axis, a.accuracy.both]) assert.ok(v >= 0 && v <= 1);
        assert.ok(a.accuracy.both <= Math.min(a.accuracy.digit, a.accuracy.axis));
      }
      assert.ok(a.frechet.value >= 0 && a.frechet.sd >= 0 && a.frechet.replicates === 8, JSON.stringify(a));
    }
    for (const sp of ['test', 'unseen'] as const) assert.equal(saved.classifier.real[sp].clips, 2);
    // with text against text hidden, per split and CFG scale, paired over the n captions
    assert.deepEqual(
      saved.text_use.map((u) => `${u.split}-${u.cfg}-${u.pairs}`),
      ['test-1-2', 'test-3-2', 'unseen-1-2', 'unseen-3-2'],
    );
    for (const u of saved.text_use) {
      const row = saved.faithfulness.rows.find((a) => a.split === u.split && a.cfg === u.cfg)!;
      const hid = saved.faithfulness.rows.find((a) => a.split === u.split && a.arm === 't2v-hidden')!;
      assert.equal(u.digit.with_text, row.accuracy!.digit);
      assert.equal(u.axis.hidden, hid.accuracy!.axis);
      assert.equal(u.digit.difference, u.digit.with_text - u.digit.hidden);
      assert.ok(u.both.ci95[0] <= u.both.difference && u.both.difference <= u.both.ci95[1]);
    }
    // the untrained model's directory says nothing of a validation split
    assert.deepEqual(saved.checkpoint, {
      chosen_on: 'what chose it is not recorded (a model directory packed before vtok kept it)',
      validation: null,
      recorded: false,
    });
    // the shipped tokenizer keeps every frame (grid [5, 16, 16]): k latent frames = the first k frames given, the rest
    // predicted
    assert.deepEqual(
      saved.frame_prediction.map((fp) => fp.given_frames),
      [1, 2],
    );
    assert.deepEqual(
      saved.frame_prediction.map((fp) => fp.per_frame.map((row) => row.frame)),
      [
        [1, 2, 3, 4],
        [2, 3, 4],
      ],
    );
    for (const row of saved.frame_prediction.flatMap((fp) => fp.per_frame)) {
      // the tokenizer's reconstruction beats an untrained model's guess
      assert.ok(row.psnr.reconstruction > row.psnr.predicted, JSON.stringify(row));
      assert.ok(row.ssim.predicted <= 1 && row.ssim.repeat_last <= 1);
    }
    // each extension continues the last latent frame with 4 new ones
    assert.equal(saved.long_video.frames, 5 + 4 * 4);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    // a model trained without the uncond task has no set for it, and the report says so
    assert.deepEqual([...gen.tasks].sort(), ['fp', 't2v', 'uncond']);
    const noUncond = { ...saved, faithfulness: { ...saved.faithfulness, rows: saved.faithfulness.rows.slice(0, 4) } };
    assert.match(t2vMarkdown(noUncond), /The model has no uncond task: no set for it\./);
    assert.doesNotMatch(md, /no uncond task/);
    assert.ok(
      md.includes(
        '| set (2 clips) | split | digit acc. | axis acc. | both | Fréchet to real ↓ | bias-corrected ± sd |',
      ),
    );
    assert.match(
      md,
      new RegExp(
        /Checkpoint: the model directory's best; what chose it is not recorded[\s\S]*## Text faithfulness[\s\S]*/
          .source +
          /[\s\S]*\| real: the captions' own clips \| test \| [\d.]+ % \|/.source +
          /[\s\S]*\| real: other clips of the split \| test \| – \| – \| – \| [\d.]+ \| −?[\d.]+ ± [\d.]+ \|/.source +
          /[\s\S]*\| t2v, CFG 3 \| unseen \|[\s\S]*\| t2v, text hidden \(what CFG subtracts\) \| unseen \|/.source +
          /[\s\S]*\| uncond task \| unseen \|[\s\S]*## Does the model use the text\?/.source +
          /[\s\S]*\| unseen \| 3 \| 2 \| [+−][\d.]+ \[[+−][\d.]+, [+−][\d.]+\] \|/.source +
          /[\s\S]*## Frame prediction[\s\S]*## Long video[\s\S]*can and cannot show/.source,
      ),
    );

    // a re-run reads every stage back instead of redoing it (same results, no generation)
    const again: string[] = [];
    const r2 = await runT2vStudy({
      generator: gen,
      model: modelDir,
      out,
      budget: 'micro',
      seed: 2,
      quiet: true,
      log: (l) => again.push(l),
    });
    assert.deepEqual(r2, JSON.parse(JSON.stringify(r)));
    // classifier, 6 generated sets, scores, frame prediction given 1 and 2 latent frames, long video
    assert.equal(again.filter((l) => /^\[[1-5]\/6\]/.test(l)).length, 11, again.join('\n'));
    assert.ok(
      again.filter((l) => /^\[[1-5]\/6\]/.test(l)).every((l) => /: done$/.test(l)),
      again.join('\n'),
    );
    assert.ok(
      ['classifier', 'generate-cfg3-unseen', 'frame-prediction-1', 'frame-prediction-2', 'long-video'].every(
        (k) => r2.timings_s[k]! > 0,
      ),
      JSON.stringify(r2.timings_s),
    );
    await assert.rejects(
      runT2vStudy({ generator: gen, model: modelDir, out, budget: 'micro', seed: 3, quiet: true }),
      /another model, budget or seed/,
    );
  },
);
