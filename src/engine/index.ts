/**
 * The vtok engine for Node: the backend-free core (./core.ts) with onnxruntime-node installed as its backend.
 * Import everything from here.
 */
import { installBackend } from './backends/backend.js';
import { nodeBackend } from './backends/node.js';

installBackend(nodeBackend);

export * from './core.js';
export { nodeBackend } from './backends/node.js';
