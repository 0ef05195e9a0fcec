import { extname } from 'node:path';
import type { Command } from 'commander';
import { check } from '../../util/errors.js';
import { progress } from '../../util/progress.js';
import type { Frame } from '../../io/frame.js';
import { probeVideo, readFrames, writeGrid, writePngSequence, writeVideo, type ReadOptions } from '../../io/video.js';
import { cropSize, nonNegNumber, positiveInt, positiveNumber } from '../parse.js';

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
    .option('--fps <n>', 'resample to this frame rate', positiveNumber('--fps'))
    .option('--start <seconds>', 'seek to this time first', nonNegNumber('--start'))
    .option('--start-frame <n>', 'skip this many frames', (v) => positiveInt('--start-frame')(v))
    .option('--frames <n>', `number of frames (grids default to ${GRID_DEFAULT_FRAMES} spread over the video)`, positiveInt('--frames'))
    .option('--stride <n>', 'keep every n-th frame', positiveInt('--stride'))
    .option('--size <n>', 'resize so the short side is n pixels', positiveInt('--size'))
    .option('--crop <N|WxH>', 'center crop', cropSize)
    .option('--columns <n>', 'grid columns (default: all frames in one row)', positiveInt('--columns'))
    .option('--json', 'machine-readable output')
    .action(async (video: string, opts: Opts) => {
      const info = await probeVideo(video);
      const ext = extname(opts.out).toLowerCase();
      const kind = ext === '.png' ? 'grid' : VIDEO_OUT.has(ext) ? 'video' : 'pngs';
      check(kind !== 'pngs' || ext === '', `--out must be a folder, a .png grid or a video (${[...VIDEO_OUT].join(', ')}), got ${opts.out}`);
      const read: ReadOptions = { fps: opts.fps, start: opts.start, startFrame: opts.startFrame, stride: opts.stride, maxFrames: opts.frames, size: opts.size, crop: opts.crop };
      const rate = opts.fps ?? info.fps;
      const available = Math.max(1, Math.round(opts.fps && !info.isImage ? info.duration * opts.fps : info.frames) - (opts.startFrame ?? 0));
      if (kind === 'grid' && !opts.frames && !opts.stride) {
        // A grid of a whole long video is unreadable: spread a few frames over it instead.
        read.stride = Math.max(1, Math.ceil(available / GRID_DEFAULT_FRAMES));
        read.maxFrames = GRID_DEFAULT_FRAMES;
      }
      const total = Math.min(read.maxFrames ?? Infinity, Math.ceil(available / (read.stride ?? 1)));
      const bar = progress('frames', total, { quiet: opts.json });
      let n = 0;
      let size = { width: 0, height: 0 };
      async function* tracked(): AsyncGenerator<Frame> {
        for await (const f of readFrames(video, read)) {
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
          writeGrid(opts.out, frames, { columns: opts.columns, gap: 2 });
          written = frames.length;
        } else if (kind === 'video') {
          written = await writeVideo(opts.out, tracked(), { fps: rate || 8 });
        } else {
          written = (await writePngSequence(opts.out, tracked())).length;
          check(written > 0, 'no frames in the requested range', video);
        }
      } finally {
        bar.stop();
      }
      const result = { input: video, out: opts.out, kind, frames: written, width: size.width, height: size.height };
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else console.log(`${opts.out}: ${written} frames of ${size.width}×${size.height} (${kind === 'pngs' ? 'PNG files' : kind})`);
    });
}
