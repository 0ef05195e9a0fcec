export * from './module.js';
export * from './layers.js';
export * from './init.js';
export * from './optim.js';
export * from './step.js';
export * from './weights.js';
export * from './discriminator.js';
export { type Chunk, flatOf, packChunks, viewsOf } from './chunks.js';
export * from './transformer.js';
