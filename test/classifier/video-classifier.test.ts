import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import {
  captionedMnistSource,
  classifierAccuracy,
  classifierPredictions,
  classifierFeatures,
  classifierFrechetDistance,
  LABEL_HEADS,
  labelledSyntheticClips,
  loadVideoClassifier,
  trainVideoClassifier,
  VideoClassifier,
} from '../../src/classifier/video-classifier.js';
import { tempDir } from '../io/fixtures.js';

/** vtok's own video classifier: learns the synthetic labels, saves and loads, and its features separate clip sets. */

const clip = { seed: 5, frames: 8, size: 16 };

describe('video classifier', () => {
  it(
    'learns motion direction well above chance within a few ' +
      'seconds on tiny clips, and round-trips through safetensors',
    async () => {
      E.seed(0);
      const dir = tempDir('clf');
      const r = await trainVideoClassifier({
        runDir: join(dir, 'run'),
        steps: 80,
        batchSize: 16,
        lr: 5e-3,
        width: 8,
        featureDim: 16,
        heldOut: 128,
        quiet: true,
        ...clip,
      });
      // chance is 25 % for each head; the direction of motion is the easy, temporal one
      assert.ok(r.accuracy.motion! > 0.45, `held-out motion accuracy ${r.accuracy.motion}`);
      assert.ok(r.accuracy.shape! >= 0 && r.accuracy.shape! <= 1);
      const { classifier, metadata } = loadVideoClassifier(r.path);
      assert.deepEqual(JSON.parse(metadata.accuracy!), r.accuracy);
      const held = labelledSyntheticClips(0, 128, { ...clip, seed: clip.seed + 1 });
      assert.deepEqual(classifierAccuracy(classifier, held), r.accuracy);
      const a = classifierFeatures(r.classifier, held),
        b = classifierFeatures(classifier, held);
      assert.equal(a.length, 128 * 16);
      assert.deepEqual(a, b);
    },
  );

  it(
    'Fréchet distance with its features: ~0 for a set against ' + 'itself, larger for noise than for other real clips',
    () => {
      E.seed(1);
      const clf = new VideoClassifier({
        channels: 3,
        frames: 8,
        size: 16,
        width: 8,
        featureDim: 8,
        heads: LABEL_HEADS,
      });
      const real = labelledSyntheticClips(0, 48, clip),
        other = labelledSyntheticClips(0, 48, { ...clip, seed: 9 });
      const noise = {
        data: Float32Array.from(E.toArray(E.randomUniform([48, 3, 8, 16, 16])), (v) => 2 * v - 1),
        shape: real.shape,
      };
      const self = classifierFrechetDistance(clf, real, real);
      const rr = classifierFrechetDistance(clf, real, other),
        rn = classifierFrechetDistance(clf, real, noise);
      assert.ok(self < 1e-6 * Math.max(1, rr), `self distance ${self}`);
      assert.ok(rn > rr, `noise ${rn} should be farther than other real clips ${rr}`);
    },
  );

  it(
    "learns captioned Moving MNIST's axis of motion from real " +
      "clips (digit and axis heads), and its labels are the captions'",
    async () => {
      const source = captionedMnistSource({ frames: 5, channels: 1 });
      const c = source.clips(0, 6, 3);
      assert.deepEqual(c.shape, [6, 1, 5, 64, 64]);
      const { captionedMnistSample, AXES } = await import('../../src/data/captioned-mnist.js');
      for (let i = 0; i < 6; i++) {
        const s = captionedMnistSample(i, { split: 'train', seed: 3, frames: 5, digits: 1 });
        assert.equal(c.labels[0]![i], s.digits[0]);
        assert.equal(c.labels[1]![i], AXES.indexOf(s.axes[0]!));
      }
      // an evaluator's clips hold the held-out digit×motion pairs too; the LM's training clips never do
      const { isHeldOut } = await import('../../src/data/captioned-mnist.js');
      const heldOutIn = (src: typeof source) => {
        const x = src.clips(0, 200, 3);
        return x.labels[0]!.filter((d, i) => isHeldOut(d, AXES[x.labels[1]![i]!]!)).length;
      };
      assert.equal(heldOutIn(source), 0);
      assert.ok(heldOutIn(captionedMnistSource({ frames: 5, channels: 1, allPairs: true })) > 10);
      E.seed(0);
      const dir = tempDir('clf-mnist');
      const r = await trainVideoClassifier({
        runDir: join(dir, 'run'),
        steps: 60,
        batchSize: 16,
        lr: 3e-3,
        width: 4,
        featureDim: 8,
        stemStride: 2,
        heldOut: 64,
        quiet: true,
        seed: 3,
        frames: 5,
        size: 64,
        source,
      });
      assert.deepEqual(Object.keys(r.accuracy), ['digit', 'axis']);
      // chance is 50 % for the axis: a digit moving along one axis is read within a few dozen steps
      assert.ok(r.accuracy.axis! > 0.65, `held-out axis accuracy ${r.accuracy.axis}`);
      const held = source.clips(0, 64, 4);
      const [digit, axis] = classifierPredictions(r.classifier, held);
      const acc = (p: Int32Array, l: Int32Array) => p.reduce((n, v, i) => n + +(v === l[i]), 0) / l.length;
      assert.deepEqual({ digit: acc(digit!, held.labels[0]!), axis: acc(axis!, held.labels[1]!) }, r.accuracy);
      await assert.rejects(
        trainVideoClassifier({
          runDir: join(dir, 'bad'),
          steps: 1,
          batchSize: 2,
          seed: 0,
          frames: 5,
          size: 32,
          source,
          quiet: true,
        }),
        /captioned-mnist-train clips are 64×64, not 32×32/,
      );
    },
  );

  it('rejects clips of the wrong size and files that are not classifier weights', () => {
    const clf = new VideoClassifier({ channels: 3, frames: 8, size: 16, width: 8, featureDim: 8, heads: LABEL_HEADS });
    const big = labelledSyntheticClips(0, 2, { ...clip, size: 24 });
    assert.throws(() => classifierFeatures(clf, big), /trained on 8×16×16 clips, got 8×24×24/);
    const dir = tempDir('clf-bad');
    assert.throws(() => loadVideoClassifier(join(dir, 'missing.safetensors')), /no such classifier/);
    writeFileSync(join(dir, 'junk.safetensors'), 'not a safetensors file');
    assert.throws(() => loadVideoClassifier(join(dir, 'junk.safetensors')));
  });
});
