import { VtokError } from '../util/errors.js';
import type { ClipDataset } from './dataset.js';
import { FolderDataset, type VideoFolderOptions } from './folder.js';
import { MovingMnist, type MovingMnistOptions } from './moving-mnist.js';
import { NaturalClips, type NaturalOptions } from './natural.js';
import { SyntheticClips, type SyntheticOptions } from './synthetic.js';

/**
 * A dataset described by plain data, so a worker thread can open the same dataset the main thread asked for.
 */
export type DatasetSpec =
  | ({ kind: 'moving-mnist' } & MovingMnistOptions)
  | ({ kind: 'synthetic' } & SyntheticOptions)
  | ({ kind: 'video-folder' } & Omit<VideoFolderOptions, 'images'>)
  | ({ kind: 'image-folder' } & Omit<VideoFolderOptions, 'images' | 'frames'>)
  | ({ kind: 'natural' } & NaturalOptions);

export function openDataset(spec: DatasetSpec): ClipDataset {
  switch (spec.kind) {
    case 'moving-mnist':
      return new MovingMnist(spec);
    case 'synthetic':
      return new SyntheticClips(spec);
    case 'video-folder':
      return new FolderDataset(spec);
    case 'image-folder':
      return new FolderDataset({ ...spec, frames: 1, images: true });
    case 'natural':
      return new NaturalClips(spec);
    default:
      throw new VtokError(`unknown dataset kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }
}
