import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import type { CheckpointContent } from './checkpoint.js';
import { saveTensors } from './weights-file.js';

/**
 * Writing a checkpoint (layout in ./checkpoint.ts). The step directory is written under a temporary name and
 * renamed into place, then the pointer `checkpoints/latest.json` (and `best.json`) is replaced atomically, so an
 * interrupted save never leaves a pointer to a torn checkpoint.
 */
const dirName = (step: number) => `step-${String(step).padStart(7, '0')}`;

export function saveCheckpoint(
  runDir: string,
  c: CheckpointContent,
  opts: { best?: boolean; keep?: number } = {},
): string {
  const root = join(runDir, 'checkpoints');
  const final = join(root, dirName(c.step));
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [name, w] of Object.entries(c.weights)) saveTensors(join(tmp, `${name}.safetensors`), w);
  for (const [name, o] of Object.entries(c.optimizers)) saveTensors(join(tmp, `optimizer.${name}.safetensors`), o);
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify({ step: c.step, ...c.state }, null, 1));
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeFileAtomic(join(root, 'latest.json'), JSON.stringify({ dir: dirName(c.step), step: c.step }));
  if (opts.best) writeFileAtomic(join(root, 'best.json'), JSON.stringify({ dir: dirName(c.step), step: c.step }));
  prune(root, opts.keep ?? 2);
  return final;
}

/** Keeps the newest `keep` step directories plus whatever latest/best point to. */
function prune(root: string, keep: number): void {
  const pinned = new Set(
    ['latest.json', 'best.json'].flatMap((p) => {
      try {
        return [JSON.parse(readFileSync(join(root, p), 'utf8')).dir as string];
      } catch {
        return [];
      }
    }),
  );
  const dirs = readdirSync(root)
    .filter((d) => /^step-\d+$/.test(d))
    .sort();
  for (const d of dirs.slice(0, Math.max(0, dirs.length - keep)))
    if (!pinned.has(d)) rmSync(join(root, d), { recursive: true, force: true });
}
