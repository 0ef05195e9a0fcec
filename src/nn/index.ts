/**
 * The inference side of nn: modules, layers, initialisers, the transformer block family, compiled inference and
 * weights from safetensors bytes. Imports no Node module and no training code (optimizers, the compiled training
 * step, the discriminator: ./train.ts), so a browser build loads models through it. Files on disk: ./weights-file.ts
 * and ./checkpoint.ts.
 */
export * from './module.js';
export * from './layers.js';
export * from './init.js';
export * from './weights.js';
export * from './transformer.js';
export * from './compiled.js';
export * from './decoder-lm.js';
export * from './lm-loss.js';
