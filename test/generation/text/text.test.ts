import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../../../src/engine/index.js';
import { byteTokenize, JsonTokenizer } from '../../../src/generation/text/tokenize.js';
import { OnnxTextEncoder, TEXT_ENCODER_CONFIG } from '../../../src/generation/text/onnx.js';
import { tempDir } from '../../io/fixtures.js';
import { writeEncoder, writeTokenizerJson } from './tiny-t5.js';

test('byteTokenize: UTF-8 bytes + 1, padded with 0, over-long prompts named', () => {
  const t = byteTokenize(['ab', 'é'], 4);
  assert.deepEqual([...t.ids], [98, 99, 0, 0, 0xc3 + 1, 0xa9 + 1, 0, 0]);
  assert.deepEqual([...t.lengths], [2, 2]);
  assert.equal(t.count, 2);
  assert.throws(
    () => byteTokenize(['the digit 4 moves'], 4),
    /the prompt "the digit 4 moves" is 17 bytes long; the text encoder takes at most 4/,
  );
});

test('tokenizer.json through tokenizers.js: T5-style ids with </s>, padding, limits, bad files', () => {
  const dir = tempDir('tokjson');
  writeTokenizerJson(join(dir, 'tokenizer.json'));
  const tok = JsonTokenizer.load(join(dir, 'tokenizer.json'));
  // ▁the=4 ▁digit=5 ▁4=… : words start at id 4 in the order written
  assert.deepEqual(tok.encode('the digit 4 moves left and right'), [4, 5, 4 + 8 + 4, 6, 7, 8, 9, 1]);
  const t = tok.tokenize(['the digit 7 moves up and down', 'the digit 1'], 10);
  assert.deepEqual([...t.lengths], [8, 4]);
  assert.deepEqual([...t.ids.slice(10, 20)], [4, 5, 4 + 8 + 1, 1, 0, 0, 0, 0, 0, 0]);
  assert.throws(
    () => tok.tokenize(['the digit 4 moves up and down and the digit 7 moves left and right'], 10),
    new RegExp(
      /the prompt "the digit 4 moves up and down and the digit 7 moves left and right" is 16 tokens long; /.source +
        /the text encoder takes at most 10/.source,
    ),
  );
  writeFileSync(join(dir, 'bad.json'), '{"model": ');
  assert.throws(() => JsonTokenizer.load(join(dir, 'bad.json')), /bad.json: not a tokenizer.json \(invalid JSON\)/);
  assert.throws(() => JsonTokenizer.load(join(dir, 'none.json')), /none.json: no such tokenizer file/);
});

test('frozen ONNX text encoder: matches the module it was exported from, masks padding, checks its files', () => {
  const dir = tempDir('t5enc');
  const net = writeEncoder(dir);
  const enc = OnnxTextEncoder.load(dir);
  assert.equal(enc.dim, 16);
  assert.equal(enc.maxTokens, 12);
  assert.match(enc.sha256, /^[0-9a-f]{64}$/);
  const prompts = ['the digit 4 moves left and right', 'the digit 4 moves up and down and the digit 7', 'the digit 0'];
  const tokens = enc.tokenize(prompts);
  const y = enc.embed(tokens); // 3 prompts through a batch-2 export: two runs, the last padded
  assert.equal(y.length, 3 * 12 * 16);
  // the same numbers as the module evaluated eagerly
  const ids = E.concrete(
    BigInt64Array.from(tokens.ids, (v) => BigInt(v)),
    [3, 12],
    'int64',
  );
  const mask = E.concrete(
    Float32Array.from({ length: 36 }, (_, i) => (i % 12 < tokens.lengths[Math.floor(i / 12)]! ? 1 : 0)),
    [3, 12],
    'float32',
  );
  const ref = E.toArray(net.forward(ids, mask)) as number[];
  let err = 0;
  for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i]! - ref[i]!));
  assert.ok(err < 1e-4, `max error ${err}`);
  // padding keys are masked: a prompt alone gives the same valid rows as inside a batch
  const alone = enc.embed(enc.tokenize([prompts[2]!]));
  const n = tokens.lengths[2]! * 16;
  for (let i = 0; i < n; i++) assert.ok(Math.abs(alone[i]! - y[2 * 12 * 16 + i]!) < 1e-5);
  assert.throws(
    () => enc.tokenize(['the digit 4 moves up and down and the digit 7 moves left and right']),
    /at most 12/,
  );
  enc.dispose();

  // an encoder whose output width differs from its config
  const wide = tempDir('t5wide');
  writeEncoder(wide, { dim: 32 });
  assert.throws(() => OnnxTextEncoder.load(wide), /output width is 16, the config says dim 32/);
  const long = tempDir('t5long');
  writeEncoder(long, { maxTokens: 8 });
  writeFileSync(
    join(long, TEXT_ENCODER_CONFIG),
    JSON.stringify({ kind: 'onnx', model: 'encoder.onnx', tokenizer: 'tokenizer.json', dim: 16, maxTokens: 12 }),
  );
  assert.throws(() => OnnxTextEncoder.load(long), /the model takes 8 tokens, the config says maxTokens 12/);
  // missing and corrupt files
  assert.throws(() => OnnxTextEncoder.load(tempDir('t5none')), /no text-encoder.json/);
  writeFileSync(join(dir, 'encoder.onnx'), Buffer.from('not a protobuf at all \xff\xff\xff'));
  assert.throws(() => OnnxTextEncoder.load(dir), /encoder.onnx: not an ONNX model/);
  writeFileSync(
    join(dir, TEXT_ENCODER_CONFIG),
    JSON.stringify({ kind: 'onnx', model: 'missing.onnx', tokenizer: 'tokenizer.json', dim: 16, maxTokens: 12 }),
  );
  assert.throws(() => OnnxTextEncoder.load(dir), /missing.onnx: no such ONNX text encoder file/);
});
