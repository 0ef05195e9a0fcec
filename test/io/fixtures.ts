import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFfmpeg } from '../../src/io/ffmpeg.js';

/** A fresh temp directory for one test file. */
export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `vtok-${name}-`));
}

/**
 * Makes a small test video with ffmpeg's lavfi test source (`testsrc` has a moving counter and colour bars, so
 * frames differ). Extra output args pick the codec.
 */
export async function makeTestVideo(
  path: string,
  opts: { width?: number; height?: number; fps?: number; frames?: number; source?: string; args?: string[] } = {},
): Promise<string> {
  const { width = 64, height = 48, fps = 10, frames = 10, source = 'testsrc' } = opts;
  const r = await runFfmpeg([
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `${source}=size=${width}x${height}:rate=${fps}`,
    '-frames:v',
    String(frames),
    ...(opts.args ?? []),
    path,
  ]);
  if (r.code !== 0) throw new Error(`making ${path} failed: ${r.stderr}`);
  return path;
}
