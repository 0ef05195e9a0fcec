import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as E from '../../src/engine/index.js';
import { buildIndex, writeIndex, writeShard, type ShardClip } from '../../src/corpus/shards.js';
import { extendClips, generate, videoFramesNeeded } from '../../src/generation/generate.js';
import { loadGenerator } from '../../src/generation/model-dir.js';
import { TextPrefixLm } from '../../src/generation/prefix-lm/text-lm.js';
import {
  extensionCondFrames,
  latentFramesOfSecond,
  parseOutput,
  textSlotsFor,
  trainingCondFrames,
} from '../../src/generation/tasks.js';
import { layoutForTokenizer } from '../../src/generation/vocab.js';
import { saveCheckpoint } from '../../src/nn/checkpoint-write.js';
import { tokenizerIdentity } from '../../src/tokenizers/identity.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { trainLm } from '../../src/train/prefix-lm-run.js';
import { runSteps } from '../../src/util/steps.js';
import { vtok } from '../cli/run-vtok.js';
import { makeTestVideo, tempDir } from '../io/fixtures.js';

const TOKENIZER = fileURLToPath(new URL('../../../models/magvit2-tiny', import.meta.url));
const { tokenizer, module } = loadTokenizer(TOKENIZER);
const PROMPT = 'the digit 4 moves left and right';

test('the last second in latent frames: the paper 3 of a 17-frame clip, as far as the model was trained', () => {
  assert.equal(latentFramesOfSecond(4, 8), 3, '9 frames of a 4× temporal tokenizer at 8 fps');
  assert.equal(latentFramesOfSecond(1, 8), 8);
  assert.deepEqual(trainingCondFrames(5, 4, 8), [1, 2, 3], '17-frame clips: 1 to 3, two latent frames generated');
  assert.deepEqual(trainingCondFrames(5, 1, 8), [1, 2, 3], '5-frame clips: a second is more than the clip');
  assert.deepEqual(trainingCondFrames(2, 1, 8), [1]);
  const layout = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks: ['fp'],
    sizes: [{ frames: 5, height: 64, width: 64 }],
  });
  assert.equal(extensionCondFrames(layout, 4, 8), 2, 'a model of older versions was trained on 1 and 2');
  assert.equal(extensionCondFrames({ ...layout, condFrames: [1, 2, 3] }, 4, 8), 3);
  assert.equal(extensionCondFrames({ ...layout, condFrames: [1, 2, 3, 4] }, 4, 8), 3, 'a second, not more');
});

/** An untrained tiny generator whose frame prediction takes text and conditions on 1 to 3 latent frames. */
function modelDir(): string {
  E.seed(0);
  const tasks = ['t2v', 'fp', 'uncond'];
  const layout = layoutForTokenizer(tokenizer, module.stateDict(), {
    tasks,
    sizes: [{ frames: 5, height: 64, width: 64 }],
    text: textSlotsFor(tasks, 40),
    condFrames: [1, 2, 3],
  });
  const model = new TextPrefixLm({
    lm: { vocabSize: layout.size, dim: 16, layers: 1, heads: 2, hidden: 32, maxLength: 1400, textDim: 16 },
    text: { dim: 16, layers: 1, heads: 2, maxTokens: 40 },
  });
  const dir = tempDir('long');
  const config = { model: { kind: 'prefix-lm', config: model.config }, layout, tokenizer: TOKENIZER, fps: 8 };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  saveCheckpoint(dir, { step: 0, weights: { model: model.stateDict() }, optimizers: {}, state: {} }, { best: true });
  return dir;
}

test('long videos: each extension keeps the prompt and its guidance, conditioned on the last second', () => {
  const gen = loadGenerator(modelDir());
  // 1 s = 8 frames: the first clip (5), then extensions of 3 latent frames given (3 frames), 2 new each
  const full = generate(gen, { task: 't2v', prompt: PROMPT, seconds: 1, seed: 2, cfg: 2 });
  assert.deepEqual([full.frames.shape[2], full.tokens[0]!.length, full.overlapFrames], [8, 3, 3]);
  const first = generate(gen, { task: 't2v', prompt: PROMPT, seed: 2, cfg: 2 });
  const tokens = gen.model.tokenize([PROMPT]);
  const text = [{ tokens, input: gen.model.embed(tokens)[0]! }];
  const ext = runSteps(extendClips(gen, first.frames, { condFrames: 3, seed: 3, cfg: 2, text }));
  assert.deepEqual(ext.added.tokens[0]!.ids, full.tokens[0]![1]!.ids, 'generate extends with the prompt and cfg');
  const parsed = parseOutput(gen.layout, ext.added.sequences[0]!);
  assert.equal(parsed.task, 'fp');
  assert.deepEqual(parsed.input!.grid, [3, 16, 16], 'the last 3 latent frames condition the extension');
  assert.equal(ext.added.sequences[0]![3], gen.layout.special['<pad>'], 'a text slot after <bot_i>');
  // the prompt matters: hidden or unguided, the draw differs
  const bare = runSteps(extendClips(gen, first.frames, { condFrames: 3, seed: 3 }));
  assert.notDeepEqual(bare.added.tokens[0]!.ids, ext.added.tokens[0]!.ids);
  const unguided = runSteps(extendClips(gen, first.frames, { condFrames: 3, seed: 3, text }));
  assert.notDeepEqual(unguided.added.tokens[0]!.ids, ext.added.tokens[0]!.ids);
  // continuing a video with a prompt; a video shorter than a second is continued from what it has
  const frame = (v: number) => ({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(v) });
  const cont = generate(gen, { task: 'continue', video: [frame(20), frame(200)], prompt: PROMPT, seed: 1 });
  assert.equal(parseOutput(gen.layout, cont.sequences[0]!).input!.grid[0], 2);
  assert.throws(
    () => generate(gen, { task: 'continue', video: [frame(20)], condFrames: 4 }),
    /condFrames 4: this model was trained to condition on 1 or 2 or 3 latent frame\(s\)/,
  );
});

test('vtok train lm records text slots and fp conditioning; an older run resumes with its own', async () => {
  const shards = tempDir('long-shards');
  const clips: ShardClip[] = Array.from({ length: 8 }, (_, i) => ({
    source: `l:${i}`,
    ids: Int32Array.from({ length: 45 }, (_, j) => (i * 7 + j) % 16),
    grid: [5, 3, 3],
    caption: `clip ${i % 2}`,
  }));
  writeShard(join(shards, 'shard-00000000.vtks'), 1024, clips);
  const identity = tokenizerIdentity(tokenizer, module.stateDict());
  writeIndex(shards, buildIndex(shards, { tokenizer: identity, clipFrames: 5, size: 12, channels: 1, corpus: 'l' }));
  const out = join(tempDir('long-run'), 'run');
  const o = { shards, tokenizer: TOKENIZER, preset: 'tiny', steps: 1, batch: 2, seed: 0, out, quiet: true };
  await trainLm({ ...o, mixture: 't2v=1,i2v=1,fp=1' });
  const layoutOf = () => JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).layout;
  assert.deepEqual(layoutOf().text, { tasks: ['t2v', 'i2v', 'fp'], length: 80 });
  assert.deepEqual(layoutOf().condFrames, [1, 2, 3]);
  // as an older version wrote it: no text slots, no conditioning recorded (its longest sequence, i2v with text,
  // is as long as fp's with text)
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  delete config.layout.text;
  delete config.layout.condFrames;
  writeFileSync(join(out, 'config.json'), JSON.stringify(config));
  await trainLm({ ...o, steps: 2, mixture: 't2v=1,i2v=1,fp=1' });
  assert.deepEqual(layoutOf().text, { tasks: ['t2v', 'i2v'], length: 80 });
  assert.deepEqual(layoutOf().condFrames, [1, 2]);
  await assert.rejects(
    trainLm({ ...o, out: join(tempDir('long-run'), 'run'), fpCondFrames: [1, 5], mixture: 't2v=1,i2v=1,fp=1' }),
    /frame prediction conditions on \[1,5\] latent frames; the clips have 5, so at most 4/,
  );
});

test('vtok generate --task continue reads the last second of a long --video', async () => {
  const dir = modelDir();
  const video = await makeTestVideo(join(tempDir('long-video'), 'v.mp4'), {
    width: 64,
    height: 64,
    fps: 8,
    frames: 240,
    args: ['-pix_fmt', 'yuv420p'],
  });
  const out = join(tempDir('long-cont'), 'c.gif');
  const r = await vtok('generate', '--model', dir, '--task', 'continue', '--video', video, '--gray', '-o', out);
  assert.equal(r.code, 0, r.stderr);
  // 3 latent frames given (the last 3 frames of 240), 2 generated: one clip of 5
  assert.match(r.stdout, /1 sample\(s\), 5 frame\(s\) of 64x64/);
  const gen = loadGenerator(dir);
  assert.equal(videoFramesNeeded(gen), 3);
  assert.equal(videoFramesNeeded(gen, 1), 1);
});
