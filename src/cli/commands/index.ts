import type { Command } from 'commander';
import { registerParity } from './parity.js';

/** Every CLI command, as a function that registers it on the program. Add new commands here. */
export const commands: ((program: Command) => void)[] = [registerParity];
