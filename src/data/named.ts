import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST } from './natural.js';
import { VtokError } from '../util/errors.js';
import type { DatasetSpec } from './open.js';

/**
 * The datasets a command line can name: moving-mnist (its standard test split held out), synthetic (a test set
 * from another seed), or a folder of videos (UCF-101 layout; without split files the held-out clips are the
 * centre clips of the same videos), or a folder made by `vtok prepare natural` (clips rendered from its photos;
 * the held-out clips from photos training never sees).
 */
export function namedDataset(
  name: string,
  split: 'train' | 'test',
  size: number,
  frames: number,
  seed: number,
  channels: 1 | 3 = 1,
): DatasetSpec {
  if (name === 'moving-mnist')
    return { kind: 'moving-mnist', split, size, frames, channels, length: split === 'test' ? 256 : 10000, seed };
  if (name === 'synthetic')
    return {
      kind: 'synthetic',
      height: size,
      width: size,
      frames,
      length: split === 'test' ? 64 : 4096,
      seed: split === 'test' ? seed + 1 : seed,
    };
  if (existsSync(join(name, MANIFEST))) {
    return {
      kind: 'natural',
      root: name,
      split,
      frames,
      height: size,
      width: size,
      length: split === 'test' ? 64 : 100000,
      seed,
    };
  }
  if (existsSync(name) && statSync(name).isDirectory()) {
    return {
      kind: 'video-folder',
      root: name,
      frames,
      crop: size,
      seed,
      clipStart: split === 'test' ? 'center' : 'random',
    };
  }
  throw new VtokError(`--data must be moving-mnist, synthetic or a folder of videos; "${name}" is none of these`);
}
