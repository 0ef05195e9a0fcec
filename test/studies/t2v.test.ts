import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import { generate } from '../../src/generation/generate.js';
import { LM_KIND, loadGenerator, type Generator, type LmDirConfig } from '../../src/generation/model-dir.js';
import { TextPrefixLm, type TextPrefixLmConfig } from '../../src/generation/prefix-lm/text-lm.js';
import { layoutForTokenizer } from '../../src/generation/vocab.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { writeFileAtomic } from '../../src/util/atomic.js';
import { runT2vStudy, studyGenerator, type T2vResults } from '../../src/studies/t2v/index.js';
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
function writeModelDir(dir: string, g: Generator): void {
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ ...g.config, tokenizer: SHIPPED } satisfies LmDirConfig));
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
      'samples-uncond-test.png',
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
    // 2 CFG scales × 2 splits + the unconditional set
    assert.deepEqual(
      saved.faithfulness.map((a) => `${a.arm}-${a.split}`),
      ['cfg1-test', 'cfg1-unseen', 'cfg3-test', 'cfg3-unseen', 'uncond-test'],
    );
    for (const a of saved.faithfulness) {
      assert.equal(a.accuracy.clips, 2);
      for (const v of [a.accuracy.digit, a.accuracy.axis, a.accuracy.both]) assert.ok(v >= 0 && v <= 1);
      assert.ok(a.accuracy.both <= Math.min(a.accuracy.digit, a.accuracy.axis));
      assert.ok(a.frechet >= 0);
    }
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
    assert.match(
      md,
      new RegExp(
        /## Text faithfulness[\s\S]*\| generated \(2\) \| unseen \| 3 \|[\s\S]*/.source +
          /## Frame prediction[\s\S]*## Long video[\s\S]*can and cannot show/.source,
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
    // classifier, 5 generated sets, scores, frame prediction given 1 and 2 latent frames, long video
    assert.equal(again.filter((l) => /^\[[1-5]\/6\]/.test(l)).length, 10, again.join('\n'));
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
