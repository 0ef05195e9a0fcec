import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encodeIdStream } from '../../codec/container.js';
import { TOKEN_MODELS, type TokenModelName } from '../../codec/token-model.js';
import { MANIFEST, NaturalClips, clipFrames, heldoutFiles, prepareNatural } from '../../data/natural.js';
import * as E from '../../engine/core.js';
import { ffmpegReason, hasEncoder, runFfmpeg } from '../../io/ffmpeg.js';
import { clipsToTensor, gridFrame, tensorToClips, type Frame } from '../../io/frame.js';
import { encodePng } from '../../io/png.js';
import { readAllFrames, readClip } from '../../io/video.js';
import { msSsimFrames, msSsimScales } from '../../metrics/ms-ssim.js';
import { psnr } from '../../metrics/psnr.js';
import { ssimFrames } from '../../metrics/ssim.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import type { Tokenizer } from '../../tokenizers/tokenizer.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { VtokError, check } from '../../util/errors.js';
import { plotRd, type RdSeries } from './plot.js';

/**
 * `vtok study codec-rd`: MAGVIT-v2's compression claim (its tokens, entropy coded, beat HEVC at low rates) tested
 * on vtok's natural-video held-out clips. Rate–distortion of
 *  - vtok: the tokenizer's ids range coded (src/codec) at several rates: all LFQ bits, fewer bits (the channels
 *    whose signs carry least, by their entropy on training-split clips, held at their usual sign, which the
 *    adaptive coder then codes almost for free), and coarser tokens (the clip encoded at half size, decoded, and
 *    upsampled: a quarter of the tokens);
 *  - ffmpeg's H.264 (libx264) and H.265 (libx265) at several CRFs, preset medium, 4:2:0, elementary streams with
 *    x264's encoder-settings SEI removed (it alone is ~700 bytes, a quarter of a clip at 0.08 bpp).
 * Rates are bits of the coded stream per pixel (containers excluded on both sides); quality is PSNR (clip MSE
 * over RGB), SSIM and MS-SSIM (as many scales as fit: 4 at 128²) against the held-out clips. The ffmpeg points do
 * not depend on the tokenizer and are kept in <out>/ffmpeg.json, so re-running with another model redoes only vtok's.
 */

export interface CodecRdOptions {
  /** Study directory: results.json/.md, rd-*.png, samples.png; the data is prepared into <out>/data if missing. */
  out: string;
  /** A folder from `vtok prepare natural` (default <out>/data). */
  data?: string;
  /** Tokenizer run or model directory. */
  model: string;
  clips?: number;
  crfs?: number[];
  /** LFQ bits kept (default: all and all − 6). */
  bitsKept?: number[];
  log?: (line: string) => void;
}

export interface RdPoint {
  method: string;
  setting: string;
  bpp: number;
  psnr: number;
  ssim: number;
  msssim: number;
  /** vtok only: rate of the bit-packed ids, and of each token model. */
  packedBpp?: number;
  bppByModel?: Partial<Record<TokenModelName, number>>;
}

/** A quality that is not a codec's (no rate): what the numbers above it are to be read against. */
export interface RdReference {
  name: string;
  psnr: number;
  ssim: number;
  msssim: number;
}

export interface CodecRdResult {
  model: string;
  clips: number;
  frames: number;
  size: number;
  msssimScales: number;
  codecs: string[];
  points: RdPoint[];
  references: RdReference[];
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Quality of reconstructed clips against the originals: mean over clips of clip PSNR, SSIM and MS-SSIM. */
function quality(orig: Frame[][], recon: Frame[][]): { psnr: number; ssim: number; msssim: number } {
  const cat = (c: Frame[]) => {
    const out = new Uint8Array(c.reduce((a, f) => a + f.data.length, 0));
    let o = 0;
    for (const f of c) {
      out.set(f.data, o);
      o += f.data.length;
    }
    return out;
  };
  return {
    psnr: mean(orig.map((c, i) => psnr(cat(c), cat(recon[i]!)))),
    ssim: mean(orig.map((c, i) => ssimFrames(c, recon[i]!).mean)),
    msssim: mean(orig.map((c, i) => msSsimFrames(c, recon[i]!).mean)),
  };
}

/** 2×2 box average (what a camera at half resolution sees). */
function halve(f: Frame): Frame {
  const w = f.width >> 1,
    h = f.height >> 1;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const i = (2 * y * f.width + 2 * x) * 3 + c;
        data[(y * w + x) * 3 + c] = Math.round(
          (f.data[i]! + f.data[i + 3]! + f.data[i + f.width * 3]! + f.data[i + f.width * 3 + 3]!) / 4,
        );
      }
  return { width: w, height: h, data };
}

/**
 * A w×h image given by `value(y, x, c)` upsampled `factor`× bilinearly (pixel centres aligned, edges clamped) to
 * an 8-bit frame.
 */
function bilinearUp(w: number, h: number, factor: number, value: (y: number, x: number, c: number) => number): Frame {
  const W = w * factor,
    H = h * factor;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(Math.max((y + 0.5) / factor - 0.5, 0), h - 1),
      y0 = Math.floor(sy),
      y1 = Math.min(y0 + 1, h - 1),
      fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = Math.min(Math.max((x + 0.5) / factor - 0.5, 0), w - 1),
        x0 = Math.floor(sx),
        x1 = Math.min(x0 + 1, w - 1),
        fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const top = value(y0, x0, c) + (value(y0, x1, c) - value(y0, x0, c)) * fx,
          bot = value(y1, x0, c) + (value(y1, x1, c) - value(y1, x0, c)) * fx;
        data[(y * W + x) * 3 + c] = Math.round(top + (bot - top) * fy);
      }
    }
  }
  return { width: W, height: H, data };
}

/** Bilinear 2× upsampling. */
function double(f: Frame): Frame {
  return bilinearUp(f.width, f.height, 2, (y, x, c) => f.data[(y * f.width + x) * 3 + c]!);
}

/** Frame indices of each latent frame of a causal tokenizer: the first frame alone, then groups of `g`. */
export function causalGroups(frames: number, g: number): number[][] {
  const groups: number[][] = [[0]];
  for (let s = 1; s < frames; s += g) groups.push(Array.from({ length: Math.min(g, frames - s) }, (_, k) => s + k));
  return groups;
}

/**
 * Each clip replaced by the exact mean colour of every block of `f`×`f` pixels over each group of frames, the
 * blocks bilinearly upsampled in space. With a tokenizer's blocks (one token's pixels and frames) this is not a
 * codec, stored as floats; it says what a tokenizer of that token grid has to beat, since a token that kept only
 * its block's colour would score this.
 */
export function blockMeans(clip: Frame[], f: number, groups: number[][]): Frame[] {
  const { width: W, height: H } = clip[0]!;
  const w = W / f,
    h = H / f;
  const out: Frame[] = [];
  for (const grp of groups) {
    const acc = new Float64Array(w * h * 3);
    for (const t of grp) {
      const d = clip[t]!.data;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < 3; c++)
            acc[(Math.floor(y / f) * w + Math.floor(x / f)) * 3 + c]! += d[(y * W + x) * 3 + c]!;
    }
    const n = grp.length * f * f;
    const frame = bilinearUp(w, h, f, (y, x, c) => acc[(y * w + x) * 3 + c]! / n);
    for (let k = 0; k < grp.length; k++) out.push(frame);
  }
  return out;
}

/** Token ids of clips (batches of 4), one Int32Array per clip, and the token grid. */
function encodeClips(tok: Tokenizer, clips: Frame[][]): { ids: Int32Array[]; grid: number[] } {
  const ids: Int32Array[] = [];
  let grid: number[] = [];
  for (let i = 0; i < clips.length; i += 4) {
    const t = clipsToTensor(clips.slice(i, i + 4));
    const out = tok.encode(E.concrete(t.data, t.shape, 'float32'));
    grid = out.shape.slice(1);
    const per = grid.reduce((a, b) => a * b, 1);
    const all = E.toArray(out);
    for (let n = 0; n < out.shape[0]!; n++) ids.push(Int32Array.from(all.slice(n * per, (n + 1) * per), Number));
  }
  return { ids, grid };
}

function decodeClips(tok: Tokenizer, ids: Int32Array[], grid: number[]): Frame[][] {
  const out: Frame[][] = [];
  for (let i = 0; i < ids.length; i += 4) {
    const chunk = ids.slice(i, i + 4);
    const flat = new Int32Array(chunk.length * chunk[0]!.length);
    chunk.forEach((c, n) => {
      flat.set(c, n * c.length);
    });
    const video = tok.decode(E.tensor(flat, [chunk.length, ...grid], 'int64'));
    out.push(...tensorToClips(video.data as Float32Array, video.shape));
  }
  return out;
}

/** Ids with the `drop`ped channels set to fixed signs. */
function dropBits(ids: Int32Array[], drop: number[], fixed: number[]): Int32Array[] {
  let clear = 0,
    set = 0;
  for (const b of drop) {
    clear |= 1 << b;
    if (fixed[b]) set |= 1 << b;
  }
  return ids.map((c) => c.map((v) => (v & ~clear) | set));
}

/**
 * The LFQ channels ordered by how little they carry: the entropy of each channel's sign over the ids of clips of
 * the training split (never the held-out clips the study scores), lowest first; and each channel's usual sign.
 */
function rankChannels(tok: Tokenizer, clips: Frame[][]): { order: number[]; fixed: number[] } {
  const { ids } = encodeClips(tok, clips);
  const bits = Math.round(Math.log2(tok.vocabSize));
  const share = Array.from({ length: bits }, (_, b) => {
    let ones = 0,
      n = 0;
    for (const c of ids) {
      for (const v of c) {
        ones += (v >>> b) & 1;
        n++;
      }
    }
    return ones / n;
  });
  const h = share.map((p) => (p <= 0 || p >= 1 ? 0 : -(p * Math.log2(p) + (1 - p) * Math.log2(1 - p))));
  return {
    order: h
      .map((e, b) => [e, b] as const)
      .sort((x, y) => x[0] - y[0])
      .map(([, b]) => b),
    fixed: share.map((p) => (p >= 0.5 ? 1 : 0)),
  };
}

async function ffmpegPoint(
  codec: 'libx264' | 'libx265',
  crf: number,
  files: string[],
  orig: Frame[][],
  dir: string,
): Promise<{ bytes: number[]; recon: Frame[][] }> {
  const bytes: number[] = [],
    recon: Frame[][] = [];
  const ext = codec === 'libx264' ? 'h264' : 'hevc';
  for (const [i, file] of files.entries()) {
    const out = join(dir, `${codec}-crf${crf}-${i}.${ext}`);
    const args = [
      '-v',
      'error',
      '-y',
      '-i',
      file,
      '-c:v',
      codec,
      '-preset',
      'medium',
      '-crf',
      String(crf),
      '-pix_fmt',
      'yuv420p',
    ];
    // x264 writes its settings as a ~700-byte SEI message; x265's is switched off by info=0.
    if (codec === 'libx264') args.push('-bsf:v', 'filter_units=remove_types=6');
    else args.push('-x265-params', 'log-level=error:info=0');
    const r = await runFfmpeg([...args, '-f', ext, out]);
    if (r.code !== 0) throw new VtokError(`${codec} failed (${ffmpegReason(r.stderr, file)})`, file);
    bytes.push(statSync(out).size);
    const frames = await readAllFrames(out);
    check(
      frames.length === orig[i]!.length,
      `${codec} gave ${frames.length} frames for a ${orig[i]!.length}-frame clip`,
      out,
    );
    recon.push(frames);
    rmSync(out);
  }
  return { bytes, recon };
}

export async function runCodecRdStudy(o: CodecRdOptions): Promise<CodecRdResult> {
  const log = o.log ?? (() => {});
  mkdirSync(o.out, { recursive: true });
  const data = o.data ?? join(o.out, 'data');
  if (!existsSync(join(data, MANIFEST))) {
    log(`preparing the natural-video data in ${data} (photos from the wallpaper packages)`);
    await prepareNatural({ out: data, log });
  }
  const files = heldoutFiles(data).slice(0, o.clips ?? 16);
  const manifest = JSON.parse(readFileSync(join(data, MANIFEST), 'utf8'));
  const { frames: T, size } = manifest.heldout as { frames: number; size: number };
  const orig = await Promise.all(files.map((f) => readClip(f, T)));
  const pixels = T * size * size;
  const { tokenizer: tok } = loadTokenizer(o.model);
  check(
    tok.channels === 3,
    `the codec study needs a colour tokenizer; ${o.model} takes ${tok.channels} channel(s)`,
    o.model,
  );
  check(
    tok.clipFrames === T,
    `${o.model} codes clips of ${tok.clipFrames} frames, the held-out clips have ${T}`,
    o.model,
  );
  const points: RdPoint[] = [];
  const samples: Record<string, Frame[]> = { original: orig[0]! };

  // vtok: rank channels on training-split clips, then code the held-out clips at each rate.
  const bits = Math.round(Math.log2(tok.vocabSize));
  const train = new NaturalClips({
    root: data,
    split: 'train',
    frames: T,
    height: size,
    width: size,
    length: 2,
    seed: 1,
  });
  log('ranking LFQ channels on two training-split clips');

  const { order, fixed } = rankChannels(
    tok,
    [0, 1].map((i) => clipFrames(train.get(i).data, T, size, size)),
  );
  const kept = (o.bitsKept ?? [bits, bits - 6]).filter((k) => k >= 1 && k <= bits);
  let fullGrid: number[] = [];
  for (const half of [false, true]) {
    const input = half ? orig.map((c) => c.map(halve)) : orig;
    const { ids, grid } = encodeClips(tok, input);
    for (const k of kept) {
      const coded = dropBits(ids, order.slice(0, bits - k), fixed);
      let recon = decodeClips(tok, coded, grid);
      if (half) recon = recon.map((c) => c.map(double));
      const bppByModel: Partial<Record<TokenModelName, number>> = {};
      for (const m of TOKEN_MODELS)
        bppByModel[m] =
          mean(coded.map((c) => encodeIdStream(tok.vocabSize, [{ grid, ids: c }], m).length * 8)) / pixels;
      const bpp = Math.min(...Object.values(bppByModel));
      const setting = `${k} bits, ${half ? 'half size' : 'full size'} (${grid.join('×')} tokens)`;
      points.push({
        method: `vtok${half ? ' half' : ''}`,
        setting,
        bpp,
        ...quality(orig, recon),
        packedBpp: (coded[0]!.length * bits) / pixels,
        bppByModel,
      });
      if (!half && k === bits) {
        samples.vtok = recon[0]!;
        fullGrid = grid;
      }
      log(`vtok ${setting}: ${bpp.toFixed(4)} bpp, PSNR ${points[points.length - 1]!.psnr.toFixed(2)} dB`);
    }
  }

  // What the token grid could keep at best if each token stored only its block's colour, and the clip's mean colour.
  const references: RdReference[] = [
    {
      name: 'each clip replaced by its mean colour',
      ...quality(
        orig,
        orig.map((c) => blockMeans(c, size, [c.map((_, i) => i)])),
      ),
    },
  ];
  const [t, h] = fullGrid as [number, number, number];
  const f = size / h,
    g = t > 1 ? (T - 1) / (t - 1) : T;
  if (Number.isInteger(f) && Number.isInteger(g)) {
    references.push({
      name:
        `block means of the ${fullGrid.join('×')} token grid ` +
        `(${f}×${f} pixels × ${g} frames each, exact, upsampled bilinearly)`,
      ...quality(
        orig,
        orig.map((c) => blockMeans(c, f, causalGroups(T, g))),
      ),
    });
  }

  const codecs = (['libx264', 'libx265'] as const).filter((c) => hasEncoder(c));
  const tmp = join(o.out, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const vtokFull = points.find((p) => p.method === 'vtok' && p.setting.startsWith(`${bits} bits`))!;
  const crfs = o.crfs ?? [51, 45, 40, 35, 30, 25];
  const cachePath = join(o.out, 'ffmpeg.json');
  const key = JSON.stringify({ files: files.map((f) => f.slice(data.length)), crfs, codecs });
  const cached = existsSync(cachePath)
    ? (JSON.parse(readFileSync(cachePath, 'utf8')) as { key: string; points: RdPoint[] })
    : undefined;
  const ffPoints: RdPoint[] = cached?.key === key ? cached.points : [];
  for (const codec of codecs) {
    const name = codec === 'libx264' ? 'H.264 (x264)' : 'H.265 (x265)';
    // The sample frame: the CRF whose rate is nearest vtok's (all bits, full size).
    const mine = ffPoints.filter((p) => p.method === name);
    const nearestCrf = (pts: RdPoint[]) =>
      pts.reduce((a, p) =>
        Math.abs(Math.log(p.bpp / vtokFull.bpp)) < Math.abs(Math.log(a.bpp / vtokFull.bpp)) ? p : a,
      ).setting;
    if (mine.length === crfs.length) {
      const crf = Number(nearestCrf(mine).slice(4));
      samples[codec] = (await ffmpegPoint(codec, crf, files.slice(0, 1), orig, tmp)).recon[0]!;
      continue;
    }
    for (const crf of crfs) {
      const { bytes, recon } = await ffmpegPoint(codec, crf, files, orig, tmp);
      const bpp = mean(bytes.map((b) => b * 8)) / pixels;
      ffPoints.push({ method: name, setting: `crf ${crf}`, bpp, ...quality(orig, recon) });
      log(`${codec} crf ${crf}: ${bpp.toFixed(4)} bpp, PSNR ${ffPoints[ffPoints.length - 1]!.psnr.toFixed(2)} dB`);
      if (`crf ${crf}` === nearestCrf(ffPoints.filter((p) => p.method === name))) samples[codec] = recon[0]!;
    }
  }
  writeFileAtomic(cachePath, JSON.stringify({ key, points: ffPoints }, null, 2));
  points.push(...ffPoints);
  rmSync(tmp, { recursive: true, force: true });

  const result: CodecRdResult = {
    model: o.model,
    clips: files.length,
    frames: T,
    size,
    msssimScales: msSsimScales(size, size),
    codecs,
    points,
    references,
  };
  writeFileAtomic(join(o.out, 'results.json'), JSON.stringify(result, null, 2));
  writeFileAtomic(join(o.out, 'results.md'), rdMarkdown(result));
  const colors: Record<string, [number, number, number]> = {
    vtok: [200, 40, 40],
    'vtok half': [230, 140, 30],
    'H.264 (x264)': [40, 90, 200],
    'H.265 (x265)': [30, 150, 60],
  };
  const series = (metric: 'psnr' | 'ssim' | 'msssim'): RdSeries[] =>
    [...new Set(points.map((p) => p.method))].map((m) => ({
      name: m,
      color: colors[m] ?? [0, 0, 0],
      points: points.filter((p) => p.method === m).map((p) => ({ bpp: p.bpp, value: p[metric] })),
    }));
  writeFileAtomic(join(o.out, 'rd-psnr.png'), plotRd('psnr db vs bits per pixel', series('psnr')));
  writeFileAtomic(join(o.out, 'rd-ssim.png'), plotRd('ssim vs bits per pixel', series('ssim')));
  writeFileAtomic(
    join(o.out, 'rd-ms-ssim.png'),
    plotRd(`ms-ssim ${result.msssimScales} scales vs bits per pixel`, series('msssim')),
  );
  // First, middle and last frame of the first clip: original | vtok | codecs at the rate nearest vtok's.
  const rows = Object.values(samples);
  const pick = [0, Math.floor(T / 2), T - 1];
  writeFileAtomic(
    join(o.out, 'samples.png'),
    encodePng(
      gridFrame(
        pick.flatMap((t) => rows.map((r) => r[t]!)),
        { columns: rows.length, gap: 2 },
      ),
    ),
  );
  return result;
}

export function rdMarkdown(r: CodecRdResult): string {
  const lines = [
    `${r.clips} held-out clips of ${r.frames}×${r.size}×${r.size}; MS-SSIM over ${r.msssimScales} scales. ` +
      `Columns left to right: samples.png shows original, vtok, ${r.codecs.join(', ')}.`,
    '',
    '| method | setting | bits per pixel | PSNR (dB) | SSIM | MS-SSIM ' +
      '| vtok: bit-packed bpp / frequency model / context model |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const p of r.points) {
    const extra = p.bppByModel
      ? `${p.packedBpp!.toFixed(4)} / ${p.bppByModel.frequency!.toFixed(4)} / ${p.bppByModel.context!.toFixed(4)}`
      : '';
    lines.push(
      `| ${p.method} | ${p.setting} | ${p.bpp.toFixed(4)} | ${p.psnr.toFixed(2)} | ` +
        `${p.ssim.toFixed(4)} | ${p.msssim.toFixed(4)} | ${extra} |`,
    );
  }
  if (r.references.length) {
    lines.push(
      '',
      'References without a rate (not codecs: what the rows above are to be read against):',
      '',
      '| reference | PSNR (dB) | SSIM | MS-SSIM |',
      '|---|---|---|---|',
    );
    for (const x of r.references)
      lines.push(`| ${x.name} | ${x.psnr.toFixed(2)} | ${x.ssim.toFixed(4)} | ${x.msssim.toFixed(4)} |`);
  }
  return `${lines.join('\n')}\n`;
}
