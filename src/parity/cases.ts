/** Imports every parity case runner so that each registers itself (add new cases here). */
export {};
import './larp.js';
import './magvit2.js';
