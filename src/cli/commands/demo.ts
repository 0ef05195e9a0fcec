import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { clipsToBatch, type Batch } from '../../data/dataset.js';
import { MovingMnist } from '../../data/moving-mnist.js';
import { clipsToTensor, gridFrame, tensorToClips, type Frame } from '../../io/frame.js';
import { hashConfig, writeTokenFile } from '../../io/tokenfile.js';
import { shippedModel } from '../../io/shipped.js';
import { readClip, writeVideo } from '../../io/video.js';
import { decodeTokens, encodeClips } from '../../tokenizers/batch.js';
import { evaluateReconstruction } from '../../tokenizers/reconstruction.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import { VtokError } from '../../util/errors.js';
import { checkOutputDir, checkOutputFile } from '../../util/output-path.js';
import { int } from '../../util/options.js';
import { generate } from '../../generation/generate.js';
import { loadGenerator } from '../../generation/model-dir.js';
import { writeGeneratedTokens, writeSamples } from '../../generation/output.js';

/**
 * `vtok demo`: the main job on a built-in default. Held-out Moving MNIST clips (or, with --natural, the colour
 * clips shipped with the natural-video model) go through the shipped tokenizer to tokens and back; writes the
 * tokens, a GIF of inputs beside reconstructions, and prints PSNR/SSIM/bits. With the shipped text-to-video model it
 * also generates a clip from a prompt (generated.gif, generated.vtok).
 */
export function registerDemo(program: Command): void {
  const gray = shippedModel('gray video'),
    colour = shippedModel('colour video'),
    generatorModel = shippedModel('generator');
  program
    .command('demo')
    .description(
      `video → tokens → video with the shipped ${gray.title} on held-out Moving MNIST clips (--natural: ` +
        'colour clips, the natural-video model), and text → video with the shipped generator',
    )
    .option(
      '--model <run>',
      `run directory of a tokenizer (default: the shipped ${gray.name}, or with --natural ${colour.name})`,
    )
    .option('--natural', `colour: the shipped ${colour.title} on the held-out clips shipped beside it`)
    .option('--out <dir>', 'where to write demo.gif and demo.vtok', 'vtok-demo')
    .option('--clips <n>', 'clips to run (side by side in the GIF)', int('--clips', { min: 1, max: 64 }), 4)
    .option(
      '--generator <dir>',
      `text-to-video model that also generates from --prompt (default: the shipped ${generatorModel.name})`,
    )
    .option('--prompt <text>', 'what the generator makes', 'the digit 4 moves left and right')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        model?: string;
        natural?: boolean;
        out: string;
        clips: number;
        json?: boolean;
        generator?: string;
        prompt: string;
      }) => {
        checkOutputDir(o.out, { option: '--out' });
        for (const f of ['demo.gif', 'demo.vtok', 'generated.gif', 'generated.vtok'])
          checkOutputFile(join(o.out, f), { option: '--out' });
        // the shipped generator is optional until it is trained; one named with --generator must exist
        const generatorDir = o.generator ?? (existsSync(generatorModel.path) ? generatorModel.path : undefined);
        if (!generatorDir)
          process.stderr.write(`no shipped text-to-video model at ${generatorModel.path}: tokenizer demo only\n`);
        const generator = generatorDir ? loadGenerator(generatorDir) : undefined;
        const model = o.model ?? (o.natural ? colour : gray).path;
        if (!existsSync(model))
          throw new VtokError(
            `no such model directory (train one with \`vtok train ${gray.kind} --out <dir>\`)`,
            model,
          );
        const { tokenizer: tok, runDir } = loadTokenizer(model);
        const cfg = readFileSync(join(runDir, 'config.json'), 'utf8');
        const data = JSON.parse(cfg).data as { size: number; frames: number; channels: 1 | 3 };
        let n = o.clips;
        const idx = Array.from({ length: n }, (_, i) => i);
        let batch: Batch;
        if ((data.channels ?? 1) === 3) {
          // colour models ship a few held-out clips (their photos are not vtok's to ship)
          const dir = join(runDir, 'samples');
          const files = existsSync(dir)
            ? readdirSync(dir)
                .filter((f) => f.endsWith('.mp4'))
                .sort()
                .slice(0, n)
            : [];
          if (files.length === 0)
            throw new VtokError(
              'this colour model has no samples/*.mp4 clips to demo; use `vtok encode <video> --model …`',
              runDir,
            );
          n = files.length;
          idx.length = n;
          const clips = await Promise.all(
            files.map((f) => readClip(join(dir, f), tok.clipFrames, { size: data.size, crop: data.size, pad: true })),
          );
          const t = clipsToTensor(clips);
          batch = { data: t.data, shape: t.shape as Batch['shape'], indices: Int32Array.from(idx), epoch: 0 };
        } else {
          const ds = new MovingMnist({
            split: 'test',
            size: data.size,
            frames: tok.clipFrames,
            channels: 1,
            length: n,
          });
          batch = clipsToBatch(
            idx.map((i) => ds.get(i)),
            ds.shape,
            idx,
          );
        }
        const tokens = encodeClips(tok, batch);
        const recon = decodeTokens(tok, tokens);
        mkdirSync(o.out, { recursive: true });
        const grid = tokens.grid,
          per = grid.reduce((a, b) => a * b, 1);
        writeTokenFile(
          join(o.out, 'demo.vtok'),
          {
            modality: tok.modality,
            kind: tok.kind,
            configHash: hashConfig(tok.config),
            vocabSize: tok.vocabSize,
            grid,
            source: { fps: 8, frameSize: [data.size, data.size] },
            extra: { model },
          },
          idx.map((i) => ({ grid, ids: tokens.ids.subarray(i * per, (i + 1) * per) })),
        );
        const real = tensorToClips(batch.data, batch.shape),
          fake = tensorToClips(recon.data, recon.shape);
        const frames: Frame[] = real[0]!.map((_, t) =>
          gridFrame(
            idx.flatMap((i) => [real[i]![t]!, fake[i]![t]!]),
            { columns: 2 * n, gap: 2 },
          ),
        );
        await writeVideo(join(o.out, 'demo.gif'), frames, { fps: 4 });
        const r = evaluateReconstruction(tok, [batch]);
        let generated: { gif: string; tokens: string; prompt: string; tokensPerSecond: number } | undefined;
        if (generator) {
          let rate = 0;
          const g = generate(generator, {
            task: 't2v',
            prompt: o.prompt,
            seed: 0,
            onProgress: (p) => (rate = p.tokensPerSecond),
          });
          generated = {
            gif: join(o.out, 'generated.gif'),
            tokens: join(o.out, 'generated.vtok'),
            prompt: o.prompt,
            tokensPerSecond: rate,
          };
          await writeSamples(generated.gif, g, generator.fps);
          writeGeneratedTokens(generated.tokens, generator, g, { task: 't2v', prompt: o.prompt, seed: 0 });
        }
        const summary = {
          model,
          kind: tok.kind,
          clips: n,
          frames: tok.clipFrames,
          tokensPerClip: grid.reduce((a, b) => a * b, 1),
          vocabSize: tok.vocabSize,
          psnr: r.psnr,
          ssim: r.ssim,
          bpp: r.bpp,
          gif: join(o.out, 'demo.gif'),
          tokens: join(o.out, 'demo.vtok'),
          ...(generated ? { generated } : {}),
        };
        if (o.json) console.log(JSON.stringify(summary));
        else {
          console.log(
            `${n} held-out ${data.channels === 3 ? 'natural-video' : 'Moving MNIST'} clips ` +
              `of ${tok.clipFrames} frames → ${summary.tokensPerClip} tokens each ` +
              `(vocabulary ${tok.vocabSize}, ${r.bpp.toFixed(3)} bits/pixel) → back`,
          );
          console.log(
            `PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}; ` +
              `inputs beside reconstructions: ${summary.gif}; tokens: ${summary.tokens}`,
          );
          if (generated)
            console.log(
              `"${o.prompt}" → ${generated.gif} (tokens: ${generated.tokens}; ` +
                `${generated.tokensPerSecond.toFixed(0)} tokens/s)`,
            );
        }
      },
    );
}
