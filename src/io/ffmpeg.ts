import { accessSync, chmodSync, constants, existsSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { VtokError } from '../util/errors.js';

/**
 * Finds the ffmpeg binary. Order: $VTOK_FFMPEG (an explicit override), the binary shipped inside the
 * @ffmpeg-installer platform package (so a fresh `npm ci` has one with no download), then `ffmpeg` on PATH.
 */
let cached: string | undefined;

export function ffmpegPath(): string {
  if (cached) return cached;
  const candidates: string[] = [];
  if (process.env.VTOK_FFMPEG) candidates.push(process.env.VTOK_FFMPEG);
  try {
    const req = createRequire(import.meta.url);
    const shipped = (req('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    if (shipped && existsSync(shipped)) {
      // Its postinstall (chmod u+x) is skipped when install scripts are disabled; do the same here.
      try {
        accessSync(shipped, constants.X_OK);
      } catch {
        try {
          chmodSync(shipped, 0o755);
        } catch {
          /* not ours to change; the probe below will reject it */
        }
      }
      candidates.push(shipped);
    }
  } catch {
    /* package missing or platform unsupported: fall back to PATH */
  }
  candidates.push('ffmpeg');
  for (const c of candidates) {
    const r = spawnSync(c, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 20000 });
    if (r.status === 0 && /ffmpeg version/.test(r.stdout)) {
      cached = c;
      return c;
    }
  }
  throw new VtokError(
    'ffmpeg not found: run `npm ci` to install the bundled binary ' +
      '(@ffmpeg-installer/ffmpeg), put ffmpeg on PATH, or set VTOK_FFMPEG',
  );
}

let fpsMode: boolean | undefined;

/**
 * Output args that keep every decoded frame as is (no duplication or dropping to a constant rate): `-vsync 0`
 * before ffmpeg 5.1, `-fps_mode passthrough` from 5.1 on (where -vsync is deprecated). Git builds print no
 * release number, so the version is told by libavformat (59.27 shipped with 5.1).
 */
export function passthroughArgs(): string[] {
  if (fpsMode === undefined) {
    const r = spawnSync(ffmpegPath(), ['-hide_banner', '-version'], { encoding: 'utf8' });
    const m = /libavformat\s+(\d+)\.\s*(\d+)/.exec(r.stdout);
    fpsMode = !!m && (Number(m[1]) > 59 || (Number(m[1]) === 59 && Number(m[2]) >= 27));
  }
  return fpsMode ? ['-fps_mode', 'passthrough'] : ['-vsync', '0'];
}

let encoders: Set<string> | undefined;

/** Whether the ffmpeg in use has an encoder (e.g. libx264 is missing from some builds). */
export function hasEncoder(name: string): boolean {
  if (!encoders) {
    const r = spawnSync(ffmpegPath(), ['-hide_banner', '-encoders'], { encoding: 'utf8', maxBuffer: 16 << 20 });
    encoders = new Set();
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*[VAS][A-Z.]{5}\s+(\S+)/.exec(line);
      if (m) encoders.add(m[1]!);
    }
  }
  return encoders.has(name);
}

export interface FfmpegResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs ffmpeg to completion, optionally feeding `input` on stdin, and collects its output. */
export function runFfmpeg(args: string[], input?: Uint8Array): Promise<FfmpegResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on('data', (b: Buffer) => out.push(b));
    proc.stderr.on('data', (b: Buffer) => err.push(b));
    proc.on('error', reject);
    proc.stdin.on('error', () => {}); // ffmpeg may exit before reading all input; its exit code tells why
    proc.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
    if (input) proc.stdin.end(input);
    else proc.stdin.end();
  });
}

/** The last meaningful lines of ffmpeg's stderr, for error messages. */
export function ffmpegReason(stderr: string, path?: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim().replace(/^\[[^\]]+ @ 0x[0-9a-f]+\] /, ''))
    .map((l) => (path && l.startsWith(`${path}: `) ? l.slice(path.length + 2) : l))
    .filter((l) => l && !/^(Input|Output) #|^Stream #|^Duration:|^Metadata:|^\w+\s*:/.test(l));
  return lines.slice(-2).join('; ') || 'ffmpeg failed';
}
