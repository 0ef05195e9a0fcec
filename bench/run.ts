import { endProfiling, setRuntimeDefaults } from '../src/engine/index.js';

/**
 * Benchmark entry point: `node dist/bench/run.js <name> [...args]`. Each benchmark module exports
 * `main(args)`, prints progress to stderr and its result as the last stdout line (one JSON object).
 * VTOK_PROFILE=<prefix> also writes onnxruntime profiles (see bench/README.md).
 */
const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<void> | void }>> = {
  engine: () => import('./engine.js'),
  magvit2: () => import('./magvit2.js'),
  larp: () => import('./larp.js'),
  compare: () => import('./compare.js'),
  int8: () => import('./int8.js'),
  lm: () => import('./lm.js'),
  'larp-ar': () => import('./larp-ar.js'),
  queue: () => import('./queue.js'),
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(`usage: node dist/bench/run.js <${Object.keys(BENCHES).join('|')}> [args]`);
  process.exit(2);
}
// VTOK_PROFILE=<prefix>: every session writes an onnxruntime profile (chrome-trace JSON) starting with <prefix>.
const profile = process.env.VTOK_PROFILE;
if (profile) setRuntimeDefaults({ profilePrefix: profile });
await (await load()).main(rest);
if (profile) endProfiling();
