import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildVocabLayout, specialId, type VocabLayout } from '../../src/generation/vocab.js';
import {
  buildSequence,
  sequenceLength,
  extensionPrompt,
  framesForLatent,
  getTask,
  outputPlan,
  parseOutput,
  checkSamplingInputs,
  registerTask,
  samplingInputs,
  taskNames,
  type TaskInputs,
} from '../../src/generation/tasks.js';
import { parseSequence, type VisualTokens } from '../../src/generation/sequence.js';
import type { TextTokens } from '../../src/generation/text/encoder.js';

const V = 64;
const GRID = [3, 2, 4]; // 3 latent frames of 2×4 tokens
const layout: VocabLayout = buildVocabLayout({
  tokenizer: { kind: 'magvit2', vocabSize: V, identity: 'a'.repeat(64) },
  tasks: ['uncond', 't2v', 't2i', 'fp', 'i2v', 'class'],
  outputs: [{ key: '16x32', frames: 3, height: 16, width: 32, grid: GRID }],
  classes: 4,
});
const sp = (n: string) => specialId(layout, n);
const clip = (seed: number, grid = GRID): VisualTokens => {
  const n = grid.reduce((a, b) => a * b, 1);
  return { ids: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) % V), grid };
};
const text: TextTokens = { ids: new Int32Array(5), lengths: Int32Array.of(3), count: 1, maxTokens: 5 };
const F = 8; // tokens per latent frame

/** Expected prefix per task: the ids before the output (text slot = <pad>), and the output length. */
const cases: { task: string; x: TaskInputs; prefix: (target: VisualTokens) => number[]; out: number; text?: number }[] =
  [
    {
      task: 'uncond',
      x: {},
      prefix: () => [sp('<bos>'), sp('<task_uncond>'), sp('<res_16x32>'), sp('<bov_o>')],
      out: 24,
    },
    {
      task: 't2v',
      x: { textTokens: text },
      text: 3,
      prefix: () => [
        sp('<bos>'),
        sp('<task_t2v>'),
        sp('<bot_i>'),
        ...Array(5).fill(sp('<pad>')),
        sp('<eot_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 24,
    },
    {
      task: 't2i',
      x: { textTokens: text },
      text: 3,
      prefix: () => [
        sp('<bos>'),
        sp('<task_t2i>'),
        sp('<bot_i>'),
        ...Array(5).fill(sp('<pad>')),
        sp('<eot_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 8,
    },
    {
      task: 'fp',
      x: {},
      prefix: (c) => [
        sp('<bos>'),
        sp('<task_fp>'),
        sp('<bov_i>'),
        ...c.ids.slice(0, F),
        sp('<eov_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 16,
    },
    {
      task: 'fp',
      x: { condFrames: 2 },
      prefix: (c) => [
        sp('<bos>'),
        sp('<task_fp>'),
        sp('<bov_i>'),
        ...c.ids.slice(0, 2 * F),
        sp('<eov_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 8,
    },
    {
      task: 'i2v',
      x: {},
      prefix: (c) => [
        sp('<bos>'),
        sp('<task_i2v>'),
        sp('<bov_i>'),
        ...c.ids.slice(0, F),
        sp('<eov_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 16,
    },
    {
      task: 'i2v',
      x: { textTokens: text },
      text: 3,
      prefix: (c) => [
        sp('<bos>'),
        sp('<task_i2v>'),
        sp('<bot_i>'),
        ...Array(5).fill(sp('<pad>')),
        sp('<eot_i>'),
        sp('<bov_i>'),
        ...c.ids.slice(0, F),
        sp('<eov_i>'),
        sp('<res_16x32>'),
        sp('<bov_o>'),
      ],
      out: 16,
    },
    {
      task: 'class',
      x: { label: 2 },
      prefix: () => [sp('<bos>'), sp('<task_class>'), sp('<class_2>'), sp('<res_16x32>'), sp('<bov_o>')],
      out: 24,
    },
  ];

test('every task: prefix layout, text slot, segments, output plan, parse(build(x)) round trip', () => {
  for (const [n, c] of cases.entries()) {
    const target = clip(n + 1);
    const msg = `${c.task} ${JSON.stringify(c.x.condFrames ?? '')}`;
    const seq = buildSequence(layout, c.task, { ...c.x, target });
    const prefix = c.prefix(target);
    assert.equal(seq.prefixLength, prefix.length, msg);
    assert.deepEqual([...seq.ids.slice(0, seq.prefixLength)], prefix, msg);
    // output: the target's last `out` ids, then the closing tokens
    const expectedOut = c.task === 't2i' ? target.ids.slice(0, F) : target.ids.slice(24 - c.out);
    assert.deepEqual([...seq.ids.slice(seq.prefixLength)], [...expectedOut, sp('<eov_o>'), sp('<eos>')], msg);
    assert.equal(seq.ids.length, prefix.length + c.out + 2, msg);
    assert.equal(sequenceLength(layout, c.task, c.x), seq.ids.length, msg);
    if (c.text) {
      assert.deepEqual(seq.text, { start: 3, length: 5 }, msg);
      assert.ok(
        seq.segments.some((s) => s.kind === 'text' && s.start === 3 && s.length === 5),
        msg,
      );
    } else assert.equal(seq.text, null, msg);
    const outSeg = seq.segments.find((s) => s.role === 'output')!;
    assert.equal(outSeg.start, seq.prefixLength, msg);
    assert.equal(outSeg.length, c.out, msg);
    // sampling: the prefix alone, and the plan that completes it
    const prompt = buildSequence(layout, c.task, {
      ...c.x,
      target: undefined,
      video: c.task === 'fp' ? target : undefined,
      image: c.task === 'i2v' ? { ids: target.ids.slice(0, F), grid: [2, 4] } : undefined,
    });
    assert.deepEqual([...prompt.ids], prefix, msg);
    const plan = outputPlan(layout, c.task, {
      ...c.x,
      video: target,
      image: { ids: target.ids.slice(0, F), grid: [1, 2, 4] },
    });
    assert.deepEqual(
      plan,
      [{ sample: { lo: 0, hi: V }, count: c.out }, { force: sp('<eov_o>') }, { force: sp('<eos>') }],
      msg,
    );
    // round trip: the parsed clip is the target (or its first frame for t2i)
    const parsed = parseOutput(layout, seq.ids);
    assert.equal(parsed.task, c.task, msg);
    assert.equal(parsed.res, '16x32');
    assert.equal(parsed.output.ids.length, c.out, msg);
    if (c.task === 't2i') assert.deepEqual(parsed.clip, { ids: target.ids.slice(0, F), grid: [1, 2, 4] }, msg);
    else assert.deepEqual(parsed.clip, target, msg);
    if (c.task === 'class') assert.equal(parsed.label, 2);
    // the sampler's way: the prompt plus the output ids it generated
    assert.deepEqual(parseOutput(layout, prompt.ids, seq.ids.slice(seq.prefixLength)).clip, parsed.clip, msg);
    assert.equal(parseSequence(layout, seq.ids).prefixLength, seq.prefixLength, msg);
  }
});

test('task errors: wrong grids, too-short videos, missing inputs, unknown tasks', () => {
  const target = clip(1);
  assert.throws(() => buildSequence(layout, 'fp', { video: clip(1, [3, 4, 2]) }), /token grid \[3,4,2\].*2×4 tokens/);
  assert.throws(
    () => buildSequence(layout, 'fp', { video: { ids: new Int32Array(8), grid: [1, 2, 4] }, condFrames: 2 }),
    /too short for fp: 1 latent frame\(s\), need 2/,
  );
  assert.throws(
    () => buildSequence(layout, 'fp', { condFrames: 3, video: target }),
    /fp conditions on 3 latent frame\(s\); this model was trained on 1 or 2/,
  );
  assert.throws(() => buildSequence(layout, 'fp', {}), /needs a video/);
  assert.throws(
    () => buildSequence(layout, 'i2v', { image: { ids: new Int32Array(16), grid: [2, 2, 4] } }),
    /image has token grid \[2,2,4\]/,
  );
  assert.throws(() => buildSequence(layout, 't2v', {}), /needs a text prompt/);
  assert.throws(() => buildSequence(layout, 'uncond', { textTokens: text }), /takes no text/);
  assert.throws(() => buildSequence(layout, 'class', { label: 4 }), /not one of the model's 4 classes/);
  assert.throws(() => buildSequence(layout, 'uncond', { target: clip(1, [2, 2, 4]) }), /clip has token grid \[2,2,4\]/);
  assert.throws(
    () => buildSequence(layout, 'uncond', { target: { ids: new Int32Array(24).fill(V), grid: GRID } }),
    /id 64 is outside the visual vocabulary/,
  );
  assert.throws(() => buildSequence(layout, 'inpaint', {}), /unknown task "inpaint" \(known: uncond, t2v/);
  const small = buildVocabLayout({ tokenizer: layout.tokenizer, tasks: ['t2v'], outputs: layout.outputs });
  assert.throws(() => buildSequence(small, 'uncond', {}), /unknown task "uncond" for this model \(it knows: t2v\)/);
  assert.throws(
    () => buildSequence(layout, 'uncond', { res: '8x8' }),
    /output size 8x8 is not one of the model's \(16x32\)/,
  );
  // LARP-style holistic grids work for the tasks without spatial layout, and are refused by the others
  const larp = buildVocabLayout({
    tokenizer: { kind: 'larp', vocabSize: V, identity: 'b'.repeat(64) },
    tasks: ['t2v', 'fp'],
    outputs: [{ key: '16x32', frames: 3, height: 16, width: 32, grid: [10] }],
  });
  const s = buildSequence(larp, 't2v', { textTokens: text, target: { ids: new Int32Array(10), grid: [10] } });
  assert.deepEqual(parseOutput(larp, s.ids).clip.grid, [10]);
  assert.throws(
    () => buildSequence(larp, 'fp', { video: { ids: new Int32Array(10), grid: [10] } }),
    /needs a tokenizer with a \[t, h, w\] token grid/,
  );
  // damaged generated sequences
  const seq = buildSequence(layout, 'uncond', { target });
  assert.throws(() => parseOutput(layout, seq.ids.slice(0, -1)), /expected <eos>/);
  const bad = seq.ids.slice();
  bad[5] = sp('<pad>');
  assert.throws(() => parseOutput(layout, bad), /not a visual id/);
  assert.throws(() => parseOutput(layout, Int32Array.of(sp('<bos>'), 3)), /expected a <task_…> token/);
});

test('registering a new task is one call; long-video extension prompts', () => {
  registerTask({
    name: 'reverse',
    description: 'test task: the clip backwards from its last frame',
    text: 'none',
    spatial: true,
    compose: (_l, x, size) => ({ outputGrid: size.grid, output: x.target }),
    clip: (_i, out) => out,
  });
  assert.ok(taskNames().includes('reverse'));
  assert.equal(getTask('reverse').description.startsWith('test task'), true);
  const withReverse = buildVocabLayout({ tokenizer: layout.tokenizer, tasks: ['reverse'], outputs: layout.outputs });
  assert.equal(buildSequence(withReverse, 'reverse', { target: clip(3) }).ids.length, 4 + 24 + 2);

  assert.equal(framesForLatent(1, 4), 1);
  assert.equal(framesForLatent(2, 4), 5);
  const tail = clip(9);
  const { sequence, plan } = extensionPrompt(layout, tail, { condFrames: 2 });
  assert.deepEqual([...sequence.ids.slice(3, 3 + 16)], [...tail.ids.slice(8, 24)]); // the last 2 latent frames
  assert.equal((plan[0] as { count: number }).count, 8);
  assert.throws(
    () => extensionPrompt(layout, { ids: new Int32Array(8), grid: [1, 2, 4] }, { condFrames: 2 }),
    /at least 2 latent frame/,
  );
});

test("sampling inputs: what each task takes is the registry's data", () => {
  assert.deepEqual(samplingInputs('t2v'), ['prompt', 'seconds']);
  assert.deepEqual(samplingInputs('t2v', { seconds: true }), ['prompt', 'seconds', 'condFrames']);
  assert.deepEqual(samplingInputs('t2i', { seconds: true }), ['prompt']);
  assert.deepEqual(samplingInputs('i2v'), ['prompt', 'image', 'seconds']);
  assert.deepEqual(samplingInputs('continue'), ['prompt', 'video', 'seconds', 'condFrames']);
  assert.deepEqual(samplingInputs('class'), ['label', 'seconds']);
  assert.deepEqual(samplingInputs('uncond'), ['seconds']);
  const flag = (k: string) => `--${k}`;
  const message = /^VtokError: task uncond takes no --label \(it takes: --seconds, --condFrames\)$/;
  assert.throws(() => checkSamplingInputs('uncond', { label: 3 }, flag), message);
  checkSamplingInputs('class', { label: 3, seconds: 2, condFrames: 2, prompt: undefined });
});

test('text to image is a one-frame video: the t2v layout with the first latent frame, closed alike', () => {
  const target = clip(4);
  const video = buildSequence(layout, 't2v', { textTokens: text, target });
  const image = buildSequence(layout, 't2i', { textTokens: text, target });
  const P = video.prefixLength;
  assert.equal(image.prefixLength, P);
  // the same prefix but for the task token, the first latent frame as output, then <eov_o> <eos> as a video ends
  const prefix = [...video.ids.subarray(0, P)];
  prefix[1] = sp('<task_t2i>');
  assert.deepEqual([...image.ids.subarray(0, P)], prefix);
  assert.deepEqual([...image.ids.subarray(P)], [...target.ids.subarray(0, F), sp('<eov_o>'), sp('<eos>')]);
  assert.deepEqual([...video.ids.subarray(P + 3 * F)], [sp('<eov_o>'), sp('<eos>')]);
  const parsed = parseOutput(layout, image.ids);
  assert.deepEqual(parsed.clip.grid, [1, 2, 4], 'decoded as a one-frame clip');
});
