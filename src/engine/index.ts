/**
 * The vtok engine for Node: the backend-free core (./core.ts) with onnxruntime-node installed as its backend.
 * Entry points import it (the CLI, the Node library entry, worker threads, tests); model and library code imports
 * ./core.ts, so that it runs on whichever backend its entry point installed.
 */
import { installBackend } from './backends/backend.js';
import { nodeBackend } from './backends/node.js';

installBackend(nodeBackend);

export * from './core.js';
export { nodeBackend } from './backends/node.js';
