import { extname, resolve } from 'node:path';
import { gridFrame, tensorToClips, type Frame } from '../io/frame.js';
import { hashConfig, writeTokenFile } from '../io/tokenfile.js';
import { writeGrid, writeVideo } from '../io/video.js';
import type { GenerateResult } from './generate.js';
import type { Generator } from './model-dir.js';

/** Writes the decoded samples: side by side per frame (mp4/gif/…), or all frames as one grid image (png). */
export async function writeSamples(path: string, r: GenerateResult, fps: number): Promise<void> {
  const clips = tensorToClips(r.frames.data, r.frames.shape);
  if (extname(path).toLowerCase() === '.png') {
    writeGrid(path, clips.flat(), { columns: clips[0]!.length, gap: 2 });
    return;
  }
  const frames: Frame[] = clips[0]!.map((_, t) => (clips.length === 1 ? clips[0]![t]! : gridFrame(clips.map((c) => c[t]!), { columns: clips.length, gap: 2 })));
  await writeVideo(path, frames, { fps });
}

/** The token file: every sample's token clips (first clip, then each extension's), readable by `vtok decode`. */
export function writeGeneratedTokens(path: string, gen: Generator, r: GenerateResult, extra: Record<string, unknown>): void {
  const tok = gen.tokenizer, s = gen.layout.outputs[0]!;
  const clips = r.tokens.flat();
  writeTokenFile(path, {
    modality: 'video', kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid: clips[0]!.grid,
    source: { fps: gen.fps, frameSize: [s.height, s.width] },
    // `model` is the tokenizer, so that `vtok decode` finds it; `generator` the LM that made the tokens
    extra: { ...extra, model: resolve(gen.tokenizerDir), generator: resolve(gen.dir), samples: r.tokens.length, clipsPerSample: r.tokens[0]!.length, overlapFrames: r.overlapFrames, sequences: r.sequences.map((q) => Array.from(q)) },
  }, clips.map((c) => ({ grid: c.grid, ids: c.ids })));
}
