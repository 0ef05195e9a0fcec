import { builtinModules } from 'node:module';

/**
 * Module resolution hooks (registered by ./inference-child.ts) that refuse any Node builtin or onnxruntime-node
 * imported from vtok's own sources (dist/src), so that whatever loads under them provably needs neither.
 */
const SRC = new URL('../../src/', import.meta.url).href;

type Resolve = (specifier: string, context: { parentURL?: string }) => Promise<unknown>;

export async function resolve(specifier: string, context: { parentURL?: string }, next: Resolve): Promise<unknown> {
  const nodeOnly =
    specifier.startsWith('node:') || builtinModules.includes(specifier) || /^onnxruntime-node(\/|$)/.test(specifier);
  if (nodeOnly && context.parentURL?.startsWith(SRC)) {
    throw new Error(`blocked: ${context.parentURL.slice(SRC.length - 4)} imports ${specifier}`);
  }
  return next(specifier, context);
}
