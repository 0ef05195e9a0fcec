import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, round1 } from './timing.js';

/**
 * `npm run bench -- compare <engine|magvit2|larp|lm|larp-ar> [threads] [--pairs N] [vtok flags…]`: runs the vtok
 * benchmark and its PyTorch reference back to back, one process at a time, N pairs (default 2), and prints each
 * pair's times, the per-metric ratio vtok / PyTorch of the medians (< 1 = vtok faster) and, as the last line, one JSON
 * object. A ratio from one machine in one sitting means something; absolute times on a shared machine do not.
 * PyTorch comes from Debian's python3-torch (`/usr/bin/python3`, or $VTOK_PYTHON); the reference scripts from
 * $VTOK_TORCH_BENCH or ../shared/bench next to the repository, else this repository's bench/ (torch_larp_ar.py).
 * Neither is a dependency of vtok. Other `--flags` go to the vtok benchmark only (e.g. `compare lm 2 --int8`),
 * except `--tokens=N`, which reaches both sides of larp-ar.
 */
const REFERENCE: Record<string, (threads: number, flags: string[]) => string[]> = {
  engine: (t) => ['torch_reference.py', String(t)],
  magvit2: (t) => ['torch_magvit2.py', '--bench', String(t)],
  larp: (t) => ['torch_larp.py', '--bench', String(t)],
  lm: (t) => ['torch_lm.py', '--bench', String(t)],
  // this repository's own reference script (bench/torch_larp_ar.py); --tokens=N reaches both sides
  'larp-ar': (t, flags) => [
    'torch_larp_ar.py',
    '--bench',
    String(t),
    ...flags.filter((f) => f.startsWith('--tokens=')),
  ],
};

function lastJson(out: string, what: string): Record<string, number> {
  const line = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`${what} printed no JSON result line`);
  return JSON.parse(line) as Record<string, number>;
}

function run(cmd: string, args: string[], what: string): Record<string, number> {
  process.stderr.write(`$ ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${what} exited with ${r.status ?? r.signal}`);
  return lastJson(r.stdout, what);
}

export async function main(args: string[]): Promise<void> {
  const name = args[0]!;
  const ref = name ? REFERENCE[name] : undefined;
  if (!ref) throw new Error(`usage: compare <${Object.keys(REFERENCE).join('|')}> [threads] [--pairs N]`);
  const threads = Number(args.slice(1).find((a) => /^\d+$/.test(a)) ?? 2);
  const pi = args.indexOf('--pairs');
  const pairs = pi >= 0 ? Number(args[pi + 1]) : 2;
  const vtokFlags = args
    .slice(1)
    .filter((a, i, all) => a.startsWith('--') && a !== '--pairs' && all[i - 1] !== '--pairs');
  const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
  const root = resolve(here, '../..');
  const refDir = process.env.VTOK_TORCH_BENCH ?? resolve(root, '../shared/bench');
  const python = process.env.VTOK_PYTHON ?? '/usr/bin/python3';
  const [script, ...refArgs] = ref(threads, vtokFlags) as [string, ...string[]];
  const scriptPath = [join(refDir, script), join(root, 'bench', script)].find((p) => existsSync(p));
  if (!scriptPath) throw new Error(`PyTorch reference ${join(refDir, script)} not found (set VTOK_TORCH_BENCH)`);

  const rows: { vtok: Record<string, number>; torch: Record<string, number> }[] = [];
  for (let i = 0; i < pairs; i++) {
    const vtok = run(process.execPath, [join(here, 'run.js'), name, String(threads), ...vtokFlags], `vtok ${name}`);
    const torch = run(python, [scriptPath, ...refArgs], `PyTorch ${script}`);
    rows.push({ vtok, torch });
    console.log(`pair ${i + 1}: vtok ${JSON.stringify(vtok)} | PyTorch ${JSON.stringify(torch)}`);
  }
  const keys = Object.keys(rows[0]!.vtok).filter((k) => k.endsWith('_ms') && k in rows[0]!.torch);
  const result: Record<string, number | string> = { bench: name, threads, pairs };
  for (const k of keys) {
    const v = median(rows.map((r) => r.vtok[k]!)),
      t = median(rows.map((r) => r.torch[k]!));
    result[`vtok_${k}`] = round1(v);
    result[`torch_${k}`] = round1(t);
    result[`ratio_${k.replace(/_ms$/, '')}`] = Math.round((v / t) * 100) / 100;
  }
  // rates (decode_tok_s) as time ratios too: PyTorch's rate / vtok's (< 1 = vtok faster)
  for (const k of Object.keys(rows[0]!.vtok).filter((k) => k.endsWith('_tok_s') && k in rows[0]!.torch)) {
    const v = median(rows.map((r) => r.vtok[k]!)),
      t = median(rows.map((r) => r.torch[k]!));
    result[`vtok_${k}`] = Math.round(v * 1000) / 1000;
    result[`torch_${k}`] = Math.round(t * 1000) / 1000;
    result[`ratio_${k.replace(/_tok_s$/, '')}`] = Math.round((t / v) * 100) / 100;
  }
  // vtok-only timings (e.g. int8 paths) against the PyTorch fp32 time of the same stage
  for (const k of Object.keys(rows[0]!.vtok).filter((k) => k.endsWith('_ms') && !keys.includes(k))) {
    const base = keys.find((b) => k.startsWith(b.replace(/_ms$/, '')));
    if (!base) continue;
    const v = median(rows.map((r) => r.vtok[k]!));
    result[`vtok_${k}`] = round1(v);
    result[`ratio_${k.replace(/_ms$/, '')}`] = Math.round((v / median(rows.map((r) => r.torch[base]!))) * 100) / 100;
  }
  // vtok-only rates (decode_int8_tok_s) against PyTorch's fp32 rate of the same stage (decode_tok_s)
  for (const k of Object.keys(rows[0]!.vtok).filter((k) => k.endsWith('_tok_s') && !(k in rows[0]!.torch))) {
    const base = Object.keys(rows[0]!.torch).find((b) => b.endsWith('_tok_s') && k.startsWith(b.split('_')[0]!));
    if (!base) continue;
    const v = median(rows.map((r) => r.vtok[k]!));
    result[`vtok_${k}`] = Math.round(v * 1000) / 1000;
    result[`ratio_${k.replace(/_tok_s$/, '')}`] = Math.round((median(rows.map((r) => r.torch[base]!)) / v) * 100) / 100;
  }
  // which int8 kernel family the vtok int8 timings ran on (bench/README.md, "int8 on every x86 CPU")
  if (typeof rows[0]!.vtok.int8_weights === 'string') result.int8_weights = rows[0]!.vtok.int8_weights;
  console.log(JSON.stringify(result));
}
