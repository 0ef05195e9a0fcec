/**
 * Benchmark entry point: `node dist/bench/run.js <name> [...args]`. Each benchmark module exports
 * `main(args)`, prints progress to stderr and its result as the last stdout line (one JSON object).
 */
const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<void> | void }>> = {
  engine: () => import('./engine.js'),
  magvit2: () => import('./magvit2.js'),
  larp: () => import('./larp.js'),
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(`usage: node dist/bench/run.js <${Object.keys(BENCHES).join('|')}> [args]`);
  process.exit(2);
}
await (await load()).main(rest);
