import { extname } from 'node:path';
import type { Command } from 'commander';
import { check } from '../../util/errors.js';
import { checkOutputDir, checkOutputFile } from '../../util/output-path.js';
import { progress } from '../../util/progress.js';
import type { Frame } from '../../io/frame.js';
import { probeVideo, readFrames, writeGrid, writePngSequence, writeVideo, type ReadOptions } from '../../io/video.js';
import { cropSize, int, num } from '../../util/options.js';

/**
 * `vtok frames <video> --out dir|grid.png|clip.mp4`: decode frames (optionally resampled, clipped, resized and
 * cropped) into a folder of PNGs, one PNG grid for looking at, or another video file.
 */
interface Opts {
  out: string;
  fps?: number;
  start?: number;
  startFrame?: number;
  frames?: number;
  stride?: number;
  size?: number;
  crop?: [number, number];
  columns?: number;
  json?: boolean;
}

const VIDEO_OUT = new Set(['.mp4', '.mkv', '.webm', '.avi', '.gif', '.y4m']);
const GRID_DEFAULT_FRAMES = 16;

export function registerFrames(program: Command): void {
  program
    .command('frames <video>')
    .description('extract frames to a folder of PNGs, a PNG grid (--out x.png) or a video (--out x.mp4|.gif|…)')
    .requiredOption('--out <path>', 'output folder, grid .png, or video file')
    .option('--fps <n>', 'resample to this frame rate', num('--fps', { min: 0, exclusiveMin: true, max: 1000 }))
    .option('--start <seconds>', 'seek to this time first', num('--start', { min: 0, max: 1e6 }))
    .option('--start-frame <n>', 'skip this many frames', int('--start-frame', { min: 0, max: 1e9 }))
    .option(
      '--frames <n>',
      `number of frames (grids default to ${GRID_DEFAULT_FRAMES} spread over the video)`,
      int('--frames', { min: 1, max: 1e9 }),
    )
    .option('--stride <n>', 'keep every n-th frame', int('--stride', { min: 1, max: 1e6 }))
    .option('--size <n>', 'resize so the short side is n pixels', int('--size', { min: 2, max: 8192 }))
    .option('--crop <N|WxH>', 'center crop', cropSize)
    .option('--columns <n>', 'grid columns (default: all frames in one row)', int('--columns', { min: 1, max: 1000 }))
    .option('--json', 'machine-readable output')
    .action(async (video: string, opts: Opts) => {
      const ext = extname(opts.out).toLowerCase();
      const kind = ext === '.png' ? 'grid' : VIDEO_OUT.has(ext) ? 'video' : 'pngs';
      check(
        kind !== 'pngs' || ext === '',
        `--out must be a folder, a .png grid or a video (${[...VIDEO_OUT].join(', ')}), got ${opts.out}`,
      );
      const out =
        kind === 'pngs'
          ? checkOutputDir(opts.out, { option: '--out' })
          : checkOutputFile(opts.out, { option: '--out', inputs: [video] });
      const info = await probeVideo(video);
      const read: ReadOptions = {
        fps: opts.fps,
        start: opts.start,
        startFrame: opts.startFrame,
        stride: opts.stride,
        maxFrames: opts.frames,
        size: opts.size,
        crop: opts.crop,
      };
      const rate = opts.fps ?? info.fps;
      const available = Math.max(
        1,
        Math.round(opts.fps && !info.isImage ? info.duration * opts.fps : info.frames) - (opts.startFrame ?? 0),
      );
      // A grid of a whole long video is unreadable: spread GRID_DEFAULT_FRAMES frames evenly over it instead
      // (frame floor(i·available/16) for i < 16; a fixed stride would give 9 frames of a 17-frame clip).
      const spread = kind === 'grid' && !opts.frames && !opts.stride && available > GRID_DEFAULT_FRAMES;
      const picked = spread
        ? new Set(
            Array.from({ length: GRID_DEFAULT_FRAMES }, (_, i) => Math.floor((i * available) / GRID_DEFAULT_FRAMES)),
          )
        : undefined;
      if (kind === 'grid' && !opts.frames && !opts.stride && !spread) read.maxFrames = GRID_DEFAULT_FRAMES;
      const total = picked
        ? picked.size
        : Math.min(read.maxFrames ?? Infinity, Math.ceil(available / (read.stride ?? 1)));
      const bar = progress('frames', total, { quiet: opts.json });
      let n = 0;
      let size = { width: 0, height: 0 };
      async function* tracked(): AsyncGenerator<Frame> {
        let index = 0;
        for await (const f of readFrames(video, read)) {
          if (picked && !picked.has(index++)) continue;
          size = { width: f.width, height: f.height };
          yield f;
          bar.update(++n);
        }
      }
      let written: number;
      try {
        if (kind === 'grid') {
          const frames: Frame[] = [];
          for await (const f of tracked()) frames.push(f);
          check(frames.length > 0, 'no frames in the requested range', video);
          writeGrid(out, frames, { columns: opts.columns, gap: 2 });
          written = frames.length;
        } else if (kind === 'video') {
          written = await writeVideo(out, tracked(), { fps: rate || 8 });
        } else {
          written = (await writePngSequence(out, tracked())).length;
          check(written > 0, 'no frames in the requested range', video);
        }
      } finally {
        bar.stop();
      }
      const result = { input: video, out: opts.out, kind, frames: written, width: size.width, height: size.height };
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else
        console.log(
          `${opts.out}: ${written} frames of ${size.width}×${size.height} (${kind === 'pngs' ? 'PNG files' : kind})`,
        );
    });
}
