import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { VtokError } from '../util/errors.js';
import { scanFolder, VIDEO_EXTS, IMAGE_EXTS, type FolderItem } from './folder.js';

/**
 * A user's folder of videos (or images) with sidecar captions: `clip.mp4` is captioned by `clip.txt` beside it
 * (UTF-8, surrounding whitespace trimmed). Videos without a sidecar are listed with no caption, so the caller
 * decides whether to skip them or train them unconditionally.
 *
 * Class labels (for class-conditional generation) come from a labels file at the folder's root, `labels.tsv` (not .txt,
 * which would caption a video named `labels`): one line per labelled video, its path relative to the folder, a tab,
 * and its class name, e.g. `walks/a.mp4<TAB>walking` (blank lines and lines starting with # are skipped). Labels
 * number the class names in sorted order; videos the file does not name have no label. Without the file, a folder
 * whose videos all sit in subfolders is labelled by subfolder (folder.ts).
 */
export interface CaptionedItem extends FolderItem {
  caption?: string;
}

export const LABELS_FILE = 'labels.tsv';

export const sidecarPath = (video: string): string => join(dirname(video), `${basename(video, extname(video))}.txt`);

/** Reads a labels file: each named video's class name, by absolute path. */
function readLabels(path: string, root: string, known: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim() || line.startsWith('#')) return;
      const bad = (what: string) => new VtokError(`line ${i + 1}: ${what}`, path);
      const tab = line.indexOf('\t');
      if (tab < 0) throw bad(`expected "<video path><TAB><class name>", got ${JSON.stringify(line)}`);
      const file = resolve(root, line.slice(0, tab).trim()),
        name = line.slice(tab + 1).trim();
      if (!name) throw bad('the class name is empty');
      if (!known.has(file)) throw bad(`${line.slice(0, tab).trim()} is not a video of ${root}`);
      if (out.has(file)) throw bad(`${line.slice(0, tab).trim()} is labelled twice`);
      out.set(file, name);
    });
  return out;
}

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
  const labelsPath = join(root, LABELS_FILE);
  if (!existsSync(labelsPath)) return { items, classes: index.classes };
  const names = readLabels(labelsPath, root, new Set(items.map((it) => resolve(it.path))));
  const classes = [...new Set(names.values())].sort();
  const id = new Map(classes.map((c, k) => [c, k]));
  return {
    items: items.map(({ label: _sub, ...it }) => {
      const name = names.get(resolve(it.path));
      return name === undefined ? it : { ...it, label: id.get(name)! };
    }),
    classes,
  };
}
