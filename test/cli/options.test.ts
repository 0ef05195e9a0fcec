import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/engine/index.js'; // installs the Node backend
import { formatParity } from '../../src/cli/commands/parity.js';
import { cropSize, int, num, oneOf } from '../../src/util/options.js';

test('int/num parse and range-check, naming the option, the value and the allowed range', () => {
  const bits = int('--bits', { min: 1, max: 24 });
  assert.equal(bits('10'), 10);
  assert.equal(bits(' 24 '), 24);
  for (const bad of ['99', '0', 'abc', '1.5', '', '1e1', '0x10'])
    assert.throws(
      () => bits(bad),
      new RegExp(
        `^VtokError: --bits must be an integer ≥ 1 and ≤ 24, got ${JSON.stringify(bad)}`.replace(/\./g, '\\.'),
      ),
    );
  const lr = num('--lr', { min: 0, exclusiveMin: true, max: 1 });
  assert.equal(lr('1e-3'), 1e-3);
  assert.equal(lr('.5'), 0.5);
  for (const bad of ['abc', '-1', '0', '2', 'NaN', 'Infinity', '', '1e-3x'])
    assert.throws(() => lr(bad), /--lr must be a number > 0 and ≤ 1, got/);
  assert.equal(num('--start', { min: 0 })('0'), 0);
  assert.equal(oneOf('--precision', 'fp32', 'int8')('int8'), 'int8');
  assert.throws(() => oneOf('--precision', 'fp32', 'int8')('fp16'), /--precision must be fp32 or int8, got "fp16"/);
  assert.deepEqual(cropSize('160x128'), [128, 160]);
  assert.throws(() => cropSize('abc'), /--crop must be N or WxH/);
});

test('vtok parity human report: a line per output and a PASS/FAIL line', () => {
  const outputs = [
    { name: 'output.recon', shape: [1, 3], maxAbsError: 1e-6, maxRelError: 2e-7 },
    { name: 'output.indices', shape: [4], maxAbsError: 0, maxRelError: 0, exact: true, mismatches: 0 },
  ];
  const pass = formatParity({ file: 'g.safetensors', case: 'lfq', pass: true, tolerance: 1e-4, outputs }).split('\n');
  assert.equal(pass.length, 3);
  assert.match(pass[0]!, /^ok {3}output\.recon +\[1,3\] abs 1\.00e-6 rel 2\.00e-7$/);
  assert.match(pass[2]!, /^PASS: lfq, 2 of 2 outputs match/);
  const fail = formatParity({
    file: 'g.safetensors',
    case: 'lfq',
    pass: false,
    tolerance: 1e-7,
    outputs: [outputs[0]!, { ...outputs[1]!, exact: false, mismatches: 2 }],
  }).split('\n');
  assert.match(fail[0]!, /^FAIL output\.recon/);
  assert.match(fail[1]!, /^FAIL output\.indices +\[4\] 2 mismatches$/);
  assert.match(fail[2]!, /^FAIL: lfq, 0 of 2 outputs match/);
});
