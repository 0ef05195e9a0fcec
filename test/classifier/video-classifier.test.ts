import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import {
  classifierAccuracy, classifierFeatures, classifierFrechetDistance, LABEL_HEADS, labelledSyntheticClips, loadVideoClassifier,
  trainVideoClassifier, VideoClassifier,
} from '../../src/classifier/video-classifier.js';
import { tempDir } from '../io/fixtures.js';

/** vtok's own video classifier: learns the synthetic labels, saves and loads, and its features separate clip sets. */

const clip = { seed: 5, frames: 8, size: 16 };

describe('video classifier', () => {
  it('learns motion direction well above chance within a few seconds on tiny clips, and round-trips through safetensors', async () => {
    E.seed(0);
    const dir = tempDir('clf');
    const r = await trainVideoClassifier({ runDir: join(dir, 'run'), steps: 80, batchSize: 16, lr: 5e-3, width: 8, featureDim: 16, heldOut: 128, quiet: true, ...clip });
    // chance is 25 % for each head; the direction of motion is the easy, temporal one
    assert.ok(r.accuracy.motion > 0.45, `held-out motion accuracy ${r.accuracy.motion}`);
    assert.ok(r.accuracy.shape >= 0 && r.accuracy.shape <= 1);
    const { classifier, metadata } = loadVideoClassifier(r.path);
    assert.deepEqual(JSON.parse(metadata.accuracy), r.accuracy);
    const held = labelledSyntheticClips(0, 128, { ...clip, seed: clip.seed + 1 });
    assert.deepEqual(classifierAccuracy(classifier, held), r.accuracy);
    const a = classifierFeatures(r.classifier, held), b = classifierFeatures(classifier, held);
    assert.equal(a.length, 128 * 16);
    assert.deepEqual(a, b);
  });

  it('Fréchet distance with its features: ~0 for a set against itself, larger for noise than for other real clips', () => {
    E.seed(1);
    const clf = new VideoClassifier({ channels: 3, frames: 8, size: 16, width: 8, featureDim: 8, heads: LABEL_HEADS });
    const real = labelledSyntheticClips(0, 48, clip), other = labelledSyntheticClips(0, 48, { ...clip, seed: 9 });
    const noise = { data: E.toArray(E.randomUniform([48, 3, 8, 16, 16])).reduce((d, v, i) => ((d[i] = 2 * v - 1), d), new Float32Array(48 * 3 * 8 * 16 * 16)), shape: real.shape };
    const self = classifierFrechetDistance(clf, real, real);
    const rr = classifierFrechetDistance(clf, real, other), rn = classifierFrechetDistance(clf, real, noise);
    assert.ok(self < 1e-6 * Math.max(1, rr), `self distance ${self}`);
    assert.ok(rn > rr, `noise ${rn} should be farther than other real clips ${rr}`);
  });

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
