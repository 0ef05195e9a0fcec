/**
 * The training side of nn: optimizers and schedules, the compiled (optionally chunked) training step, the 3-D
 * PatchGAN discriminator and checkpoint writing. Inference code imports none of it (./index.ts).
 */
export * from './optim.js';
export * from './step.js';
export * from './discriminator.js';
export { type Chunk, flatOf, packChunks, viewsOf } from './chunks.js';
export { saveCheckpoint } from './checkpoint-write.js';
