import type { TokenizerModel } from '../tokenizer-task.js';

/** What `vtok train <kind>` needs from a tokenizer kind: presets, its model config for a dataset, and a builder. */
export interface Preset {
  size: number;
  frames: number;
  batch: number;
  steps: number;
  lr: number;
  model: Record<string, unknown>;
}

export interface TokenizerTrainer {
  kind: string;
  presets: Record<string, Preset>;
  modelConfig(preset: Preset, data: { size: number; frames: number; channels: number }, opts: { tokens?: number; prior?: boolean; bits?: number }): Record<string, unknown>;
  build(config: Record<string, unknown>, totalSteps: number): TokenizerModel;
}
