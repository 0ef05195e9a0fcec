import { extname, resolve } from 'node:path';
import { sideBySide } from '../io/clip-layout.js';
import { tensorToClips } from '../io/frame.js';
import { hashConfig, writeTokenFile } from '../io/tokenfile.js';
import { VIDEO_EXTENSIONS, writeGrid, writeVideo } from '../io/video.js';
import { VtokError } from '../util/errors.js';
import type { GenerateResult } from './generate.js';
import type { Generator } from './model-dir.js';

/** What writeSamples writes, by extension: a video, or .png for all frames in one grid image. */
export const SAMPLE_EXTENSIONS: readonly string[] = [...VIDEO_EXTENSIONS, '.png'];

/** Refuses an output writeSamples cannot write, so that a long generation never fails at its end. */
export function checkSamplesPath(path: string, option = '-o'): void {
  const ext = extname(path).toLowerCase();
  if (!SAMPLE_EXTENSIONS.includes(ext)) {
    const got = ext ? `, not ${ext}` : ' (it has no extension)';
    throw new VtokError(`${option} must end in ${SAMPLE_EXTENSIONS.join(', ')}${got}`, path);
  }
}

/**
 * Writes the decoded samples: side by side per frame (mp4/gif/…; io/clip-layout, the layout `vtok decode` gives
 * their token file), or all frames as one grid image (png), a sample per row.
 */
export async function writeSamples(path: string, r: GenerateResult, fps: number): Promise<void> {
  checkSamplesPath(path);
  const clips = tensorToClips(r.frames.data, r.frames.shape);
  if (extname(path).toLowerCase() === '.png') {
    writeGrid(path, clips.flat(), { columns: clips[0]!.length, gap: 2 });
    return;
  }
  await writeVideo(
    path,
    clips[0]!.map((_, t) => sideBySide(clips.map((c) => c[t]!))),
    { fps },
  );
}

/**
 * The token file: every sample's token clips (first clip, then each extension's), with the layout (samples,
 * clipsPerSample, overlapFrames, frames per sample) by which `vtok decode` makes of them the video writeSamples
 * wrote.
 */
export function writeGeneratedTokens(
  path: string,
  gen: Pick<Generator, 'tokenizer' | 'tokenizerDir' | 'dir' | 'fps'>,
  r: GenerateResult,
  extra: Record<string, unknown>,
): void {
  const tok = gen.tokenizer,
    [height, width] = r.frames.shape.slice(3) as [number, number];
  const clips = r.tokens.flat();
  writeTokenFile(
    path,
    {
      modality: 'video',
      kind: tok.kind,
      configHash: hashConfig(tok.config),
      vocabSize: tok.vocabSize,
      grid: clips[0]!.grid,
      source: { fps: gen.fps, frameSize: [height, width] },
      // `model` is the tokenizer, so that `vtok decode` finds it; `generator` the LM that made the tokens
      extra: {
        ...extra,
        model: resolve(gen.tokenizerDir),
        generator: resolve(gen.dir),
        samples: r.tokens.length,
        clipsPerSample: r.tokens[0]!.length,
        overlapFrames: r.overlapFrames,
        frames: r.frames.shape[2],
        sequences: r.sequences.map((q) => Array.from(q)),
      },
    },
    clips.map((c) => ({ grid: c.grid, ids: c.ids })),
  );
}
