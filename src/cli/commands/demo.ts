import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { clipsToBatch } from '../../data/dataset.js';
import { MovingMnist } from '../../data/moving-mnist.js';
import { gridFrame, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, writeTokenFile } from '../../io/tokenfile.js';
import { writeVideo } from '../../io/video.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { evaluateReconstruction } from '../../tokenizers/reconstruction.js';
import { loadTokenizer } from '../../tokenizers/registry.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir, checkOutputFile } from '../../util/output-path.js';
import { int } from '../options.js';
import { generate } from '../../generation/generate.js';
import { loadGenerator } from '../../generation/model-dir.js';
import { SHIPPED_GENERATOR, writeGeneratedTokens, writeSamples } from './generate.js';

/** The weights shipped with vtok: a tiny MAGVIT-v2 trained on Moving MNIST (see README). */
export const SHIPPED_MODEL = fileURLToPath(new URL('../../../../models/magvit2-tiny', import.meta.url));

/**
 * `vtok demo`: the main job on a built-in default. Held-out Moving MNIST clips go through the shipped tokenizer
 * to tokens and back; writes the tokens, a GIF of inputs beside reconstructions, and prints PSNR/SSIM/bits. With the
 * shipped text-to-video model it also generates a clip from a prompt (generated.gif, generated.vtok).
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('video → tokens → video with the shipped tiny MAGVIT-v2 on held-out Moving MNIST clips, and text → video with the shipped generator')
    .option('--model <run>', 'run directory of a tokenizer (default: the shipped magvit2-tiny)', SHIPPED_MODEL)
    .option('--out <dir>', 'where to write demo.gif and demo.vtok', 'vtok-demo')
    .option('--clips <n>', 'clips to run (side by side in the GIF)', int('--clips', { min: 1, max: 64 }), 4)
    .option('--generator <dir>', 'text-to-video model that also generates from --prompt (default: the shipped t2v-mnist)')
    .option('--prompt <text>', 'what the generator makes', 'the digit 4 moves left and right')
    .option('--json', 'print JSON')
    .action(async (o: { model: string; out: string; clips: number; json?: boolean; generator?: string; prompt: string }) => {
      checkOutputDir(o.out, { option: '--out' });
      for (const f of ['demo.gif', 'demo.vtok', 'generated.gif', 'generated.vtok']) checkOutputFile(join(o.out, f), { option: '--out' });
      // the shipped generator is optional until it is trained; one named with --generator must exist
      const generatorDir = o.generator ?? (existsSync(SHIPPED_GENERATOR) ? SHIPPED_GENERATOR : undefined);
      if (!generatorDir) process.stderr.write(`no shipped text-to-video model at ${SHIPPED_GENERATOR}: tokenizer demo only\n`);
      const generator = generatorDir ? loadGenerator(generatorDir) : undefined;
      if (!existsSync(o.model)) throw new VtokError('no such model directory (train one with `vtok train magvit2 --out <dir>`)', o.model);
      const { tokenizer: tok, runDir } = loadTokenizer(o.model);
      const cfg = readFileSync(join(runDir, 'config.json'), 'utf8');
      const data = JSON.parse(cfg).data as { size: number; frames: number; channels: 1 | 3 };
      const n = o.clips;
      const ds = new MovingMnist({ split: 'test', size: data.size, frames: tok.clipFrames, channels: data.channels ?? 1, length: n });
      const idx = Array.from({ length: n }, (_, i) => i);
      const batch = clipsToBatch(idx.map((i) => ds.get(i)), ds.shape, idx);
      const tokens = encodeClips(tok, batch);
      const recon = decodeTokens(tok, tokens);
      mkdirSync(o.out, { recursive: true });
      const grid = tokens.grid, per = grid.reduce((a, b) => a * b, 1);
      writeTokenFile(join(o.out, 'demo.vtok'), {
        modality: tok.modality, kind: tok.kind, configHash: hashConfig(tok.config), vocabSize: tok.vocabSize, grid, source: { fps: 8, frameSize: [data.size, data.size] }, extra: { model: o.model },
      }, idx.map((i) => ({ grid, ids: tokens.ids.subarray(i * per, (i + 1) * per) })));
      const real = tensorToClips(batch.data, batch.shape), fake = tensorToClips(recon.data, recon.shape);
      const frames: Frame[] = real[0].map((_, t) => gridFrame(idx.flatMap((i) => [real[i][t], fake[i][t]]), { columns: 2 * n, gap: 2 }));
      await writeVideo(join(o.out, 'demo.gif'), frames, { fps: 4 });
      const r = evaluateReconstruction(tok, [batch]);
      let generated: { gif: string; tokens: string; prompt: string; tokensPerSecond: number } | undefined;
      if (generator) {
        let rate = 0;
        const g = generate(generator, { task: 't2v', prompt: o.prompt, seed: 0, onProgress: (p) => (rate = p.tokensPerSecond) });
        generated = { gif: join(o.out, 'generated.gif'), tokens: join(o.out, 'generated.vtok'), prompt: o.prompt, tokensPerSecond: rate };
        await writeSamples(generated.gif, g, generator.fps);
        writeGeneratedTokens(generated.tokens, generator, g, { task: 't2v', prompt: o.prompt, seed: 0 });
      }
      const summary = { model: o.model, kind: tok.kind, clips: n, frames: tok.clipFrames, tokensPerClip: grid.reduce((a, b) => a * b, 1), vocabSize: tok.vocabSize, psnr: r.psnr, ssim: r.ssim, bpp: r.bpp, gif: join(o.out, 'demo.gif'), tokens: join(o.out, 'demo.vtok'), ...(generated ? { generated } : {}) };
      if (o.json) console.log(JSON.stringify(summary));
      else {
        console.log(`${n} held-out Moving MNIST clips of ${tok.clipFrames} frames → ${summary.tokensPerClip} tokens each (vocabulary ${tok.vocabSize}, ${r.bpp.toFixed(3)} bits/pixel) → back`);
        console.log(`PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}; inputs beside reconstructions: ${summary.gif}; tokens: ${summary.tokens}`);
        if (generated) console.log(`"${o.prompt}" → ${generated.gif} (tokens: ${generated.tokens}; ${generated.tokensPerSecond.toFixed(0)} tokens/s)`);
      }
    });
}
