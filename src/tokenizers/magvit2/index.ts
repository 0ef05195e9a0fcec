/** MAGVIT-v2 (Open-MAGVIT2 architecture): config, layers, encoder/decoder, model and Tokenizer. */
export * from './config.js';
export * from './layers.js';
export * from './encoder.js';
export * from './decoder.js';
export * from './model.js';
export * from './tokenizer.js';
