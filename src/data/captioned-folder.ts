import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { scanFolder, VIDEO_EXTS, IMAGE_EXTS, type FolderItem } from './folder.js';

/**
 * A user's folder of videos (or images) with sidecar captions: `clip.mp4` is captioned by `clip.txt` beside it
 * (UTF-8, surrounding whitespace trimmed). Videos without a sidecar are listed with no caption, so the caller
 * decides whether to skip them or train them unconditionally.
 */
export interface CaptionedItem extends FolderItem {
  caption?: string;
}

export const sidecarPath = (video: string): string => join(dirname(video), `${basename(video, extname(video))}.txt`);

export function scanCaptionedFolder(
  root: string,
  opts: { images?: boolean } = {},
): { items: CaptionedItem[]; classes?: string[] } {
  const index = scanFolder(root, { exts: opts.images ? IMAGE_EXTS : VIDEO_EXTS });
  const items = index.items.map((it) => {
    const txt = sidecarPath(it.path);
    const caption = existsSync(txt) ? readFileSync(txt, 'utf8').trim() : undefined;
    return caption ? { ...it, caption } : { ...it };
  });
  return { items, classes: index.classes };
}
