import type { Command } from 'commander';
import { VtokError } from '../../util/errors.js';
import { progress } from '../../util/progress.js';
import { probeVideo, readFrames, type ReadOptions } from '../../io/video.js';
import { meanCapped, psnr } from '../../metrics/psnr.js';
import { ssimFrame } from '../../metrics/ssim.js';
import { cropSize, int } from '../../util/options.js';

/**
 * `vtok metrics <a> <b>`: PSNR and SSIM between two videos (e.g. an original and its reconstruction), frame by
 * frame, both decoded in step so neither is held whole in memory.
 */
interface Opts {
  frames?: number;
  size?: number;
  crop?: [number, number];
  perFrame?: boolean;
  json?: boolean;
}

export function registerMetrics(program: Command): void {
  program
    .command('metrics <a> <b>')
    .description('PSNR and SSIM between two videos (or images), per frame and averaged')
    .option('--frames <n>', 'compare only the first n frames', int('--frames', { min: 1, max: 1e9 }))
    .option('--size <n>', 'resize both so the short side is n pixels first', int('--size', { min: 2, max: 8192 }))
    .option('--crop <N|WxH>', 'center-crop both first', cropSize)
    .option('--per-frame', 'also list every frame')
    .option('--json', 'machine-readable output')
    .action(async (a: string, b: string, opts: Opts) => {
      const [ia, ib] = [await probeVideo(a), await probeVideo(b)];
      const read: ReadOptions = { maxFrames: opts.frames, size: opts.size, crop: opts.crop };
      const total = Math.min(opts.frames ?? Infinity, ia.frames, ib.frames);
      const bar = progress('metrics', total, { quiet: opts.json });
      const itA = readFrames(a, read);
      const itB = readFrames(b, read);
      const psnrs: number[] = [];
      const ssims: number[] = [];
      let extra: string | undefined;
      let size = { width: ia.width, height: ia.height };
      try {
        for (;;) {
          const [fa, fb] = await Promise.all([itA.next(), itB.next()]);
          if (fa.done || fb.done) {
            if (!fa.done || !fb.done) extra = fa.done ? b : a;
            break;
          }
          const [x, y] = [fa.value, fb.value];
          if (x.width !== y.width || x.height !== y.height) {
            throw new VtokError(
              `frame sizes differ: ${a} is ${x.width}×${x.height}, ` +
                `${b} is ${y.width}×${y.height} (use --size/--crop to compare at one size)`,
            );
          }
          size = { width: x.width, height: x.height };
          psnrs.push(psnr(x.data, y.data));
          ssims.push(ssimFrame(x, y));
          bar.update(psnrs.length, { psnr: psnrs[psnrs.length - 1]! });
        }
      } finally {
        bar.stop();
        await Promise.all([itA.return(undefined), itB.return(undefined)]);
      }
      if (extra) process.stderr.write(`vtok: warning: ${extra} has more frames; compared the first ${psnrs.length}\n`);
      const result = {
        a,
        b,
        frames: psnrs.length,
        ...size,
        psnr: meanCapped(psnrs),
        ssim: ssims.reduce((s, v) => s + v, 0) / ssims.length,
        ...(opts.perFrame
          ? { perFrame: psnrs.map((p, i) => ({ psnr: Number.isFinite(p) ? p : null, ssim: ssims[i] })) }
          : {}),
      };
      if (opts.json) {
        console.log(JSON.stringify(result, null, 2));
        return;
      }
      // Identical frames have infinite PSNR; the mean counts them as 100 dB (meanCapped).
      const lines = [
        `${psnrs.length} frames of ${size.width}×${size.height}: ` +
          `PSNR ${result.psnr.toFixed(2)} dB, SSIM ${result.ssim.toFixed(4)}`,
      ];
      if (opts.perFrame) {
        psnrs.forEach((p, i) => {
          lines.push(
            `  ${String(i).padStart(5)}  PSNR ` +
              `${Number.isFinite(p) ? p.toFixed(2) : 'inf'} dB  SSIM ${ssims[i]!.toFixed(4)}`,
          );
        });
      }
      console.log(lines.join('\n'));
    });
}
