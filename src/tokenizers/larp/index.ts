export * from './config.js';
export * from './model.js';
export * from './gptc.js';
export * from './prior.js';
export * from './loss.js';
export * from './tokenizer.js';
export { sincos1d, sincos3d } from './sincos.js';
