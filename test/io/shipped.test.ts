import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SHIPPED_MODELS, shippedModel, shippedTokenizers } from '../../src/io/shipped.js';

test('one list of shipped models: each in models/, one default per job', () => {
  for (const m of SHIPPED_MODELS) assert.ok(existsSync(join(m.path, 'config.json')), `${m.name}: ${m.path}`);
  assert.deepEqual(SHIPPED_MODELS.map((m) => m.defaultFor).sort(), ['colour video', 'generator', 'gray video']);
  assert.equal(shippedModel('gray video').name, 'magvit2-tiny');
  assert.equal(shippedModel('colour video').name, 'magvit2-natural');
  assert.equal(shippedModel('generator').name, 't2v-mnist');
  // the tokenizers record the kind they were trained as; their data says which job they are for
  for (const m of shippedTokenizers()) {
    const config = JSON.parse(readFileSync(join(m.path, 'config.json'), 'utf8'));
    assert.equal(config.model.kind, m.kind, m.name);
    assert.equal(config.data.channels ?? 1, m.defaultFor === 'gray video' ? 1 : 3, m.name);
  }
});
