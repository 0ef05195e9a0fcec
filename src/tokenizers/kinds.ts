/** Registers every tokenizer kind with the registry (import for the side effect). */
import { LarpTokenizer } from './larp/tokenizer.js';
import { Magvit2Tokenizer } from './magvit2/tokenizer.js';
import { registerTokenizer } from './registry.js';

registerTokenizer('larp', {
  create(config) {
    const tokenizer = LarpTokenizer.fromConfig(config, config.gptc_sizes as never);
    return { tokenizer, module: tokenizer.model };
  },
});

registerTokenizer('magvit2', {
  create(config) {
    const tokenizer = new Magvit2Tokenizer(config);
    return { tokenizer, module: tokenizer.model };
  },
});
