import type { Command } from 'commander';
import { registerFrames } from './frames.js';
import { registerInfo } from './info.js';
import { registerMetrics } from './metrics.js';
import { registerParity } from './parity.js';

/** Every CLI command, as a function that registers it on the program. Add new commands here. */
export const commands: ((program: Command) => void)[] = [registerParity, registerInfo, registerFrames, registerMetrics];
