import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Opaque, type PyCallable, PyGlobal, unpickle } from '../../src/io/pickle.js';

/** Bytes from a mix of opcode bytes and ASCII text. */
function bytes(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else for (const c of new TextEncoder().encode(p)) out.push(c);
  }
  return Uint8Array.from(out);
}
/** BINUNICODE of `s`. */
const uni = (s: string) => {
  const b = new TextEncoder().encode(s);
  return [0x58, b.length & 255, (b.length >>> 8) & 255, 0, 0, ...b];
};

const nothingAllowed = { resolve: () => undefined };

describe('restricted unpickler', () => {
  it('reads the protocol-2 opcodes torch.save writes, calling only the callables it is given', () => {
    // {'w': rebuild(<persistent ('storage', 'k0')>, 3, (2, 1)), 'n': 300, 'x': -2, 'f': 0.5, 't': True, 'z': None}
    const calls: unknown[][] = [];
    const rebuild: PyCallable = {
      call: (args) => {
        calls.push(args);
        return { tensor: args };
      },
    };
    const pkl = bytes(
      0x80,
      2, // PROTO 2
      0x7d,
      0x71,
      0, // EMPTY_DICT BINPUT 0
      0x28, // MARK
      ...uni('w'),
      0x71,
      1,
      0x63,
      'torch._utils\n_rebuild_tensor_v2\n',
      0x71,
      2, // GLOBAL
      0x28, // MARK (args)
      0x28,
      ...uni('storage'),
      ...uni('k0'),
      0x74,
      0x51, // MARK … TUPLE BINPERSID
      0x4b,
      3, // BININT1
      0x4b,
      2,
      0x4b,
      1,
      0x86, // TUPLE2
      0x74, // TUPLE
      0x52,
      0x71,
      3, // REDUCE BINPUT 3
      ...uni('n'),
      0x4d,
      0x2c,
      0x01, // BININT2 300
      ...uni('x'),
      0x4a,
      0xfe,
      0xff,
      0xff,
      0xff, // BININT -2
      ...uni('f'),
      0x47,
      0x3f,
      0xe0,
      0,
      0,
      0,
      0,
      0,
      0, // BINFLOAT 0.5
      ...uni('t'),
      0x88, // NEWTRUE
      ...uni('z'),
      0x4e, // NONE
      ...uni('again'),
      0x68,
      3, // BINGET 3: the same object
      0x75, // SETITEMS
      0x2e, // STOP
    );
    const v = unpickle(pkl, {
      resolve: (m, n) => (`${m}.${n}` === 'torch._utils._rebuild_tensor_v2' ? rebuild : undefined),
      persistentLoad: (pid) => ({ storage: pid }),
    }) as Map<string, unknown>;
    assert.ok(v instanceof Map);
    assert.deepEqual([...v.keys()], ['w', 'n', 'x', 'f', 't', 'z', 'again']);
    assert.deepEqual(calls, [[{ storage: ['storage', 'k0'] }, 3, [2, 1]]]);
    assert.equal(v.get('again'), v.get('w'));
    assert.equal(v.get('n'), 300);
    assert.equal(v.get('x'), -2);
    assert.equal(v.get('f'), 0.5);
    assert.equal(v.get('t'), true);
    assert.equal(v.get('z'), null);
  });

  it('builds nothing it is not given: a foreign class stays its name, its instances Opaque, state skipped', () => {
    // [argparse.Namespace() with BUILD state {'lr': 1}, numpy.core.multiarray._reconstruct(…), collections.Counter]
    const pkl = bytes(
      0x80,
      2,
      0x5d,
      0x28,
      0x63,
      'argparse\nNamespace\n',
      0x29,
      0x81, // GLOBAL EMPTY_TUPLE NEWOBJ
      0x7d,
      ...uni('lr'),
      0x4b,
      1,
      0x73,
      0x62, // EMPTY_DICT … SETITEM BUILD
      0x63,
      'numpy.core.multiarray\n_reconstruct\n',
      0x4b,
      0,
      0x85,
      0x52, // GLOBAL TUPLE1 REDUCE
      0x63,
      'collections\nCounter\n',
      0x65,
      0x2e, // APPENDS STOP
    );
    const v = unpickle(pkl, nothingAllowed) as unknown[];
    assert.ok(v[0] instanceof Opaque && v[0].className === 'argparse.Namespace');
    assert.ok(v[1] instanceof Opaque && v[1].className === 'numpy.core.multiarray._reconstruct');
    assert.ok(v[2] instanceof PyGlobal && v[2].qualified === 'collections.Counter');
  });

  it('reads protocol 0 text opcodes and protocol 4 framing', () => {
    const p0 = unpickle(bytes("(lp0\nI01\naI-7\naL123456789012345678901L\naF2.5\naS'hi'\na."), nothingAllowed);
    assert.deepEqual(p0, [true, -7, 123456789012345678901n, 2.5, 'hi']);
    const p4 = unpickle(
      bytes(0x80, 4, 0x95, 9, 0, 0, 0, 0, 0, 0, 0, 0x8c, 2, 'ab', 0x94, 0x8a, 1, 0xff, 0x86, 0x94, 0x2e),
      nothingAllowed,
    );
    assert.deepEqual(p4, ['ab', -1]);
  });

  it('refuses malformed pickles with a clear message', () => {
    const file = 'x.pkl';
    assert.throws(() => unpickle(bytes(0x80, 2, 0x58, 10, 0, 0, 0, 'ab'), { ...nothingAllowed, file }), /truncated/);
    assert.throws(() => unpickle(bytes(0x80, 2, 0x4e), { ...nothingAllowed, file }), /without a STOP/);
    assert.throws(() => unpickle(bytes(0x80, 2, 0xff, 0x2e), { ...nothingAllowed, file }), /unknown opcode 0xff/);
    assert.throws(() => unpickle(bytes(0x80, 2, 0x52, 0x2e), { ...nothingAllowed, file }), /stack underflow/);
    assert.throws(() => unpickle(bytes(0x80, 2, 0x68, 5, 0x2e), { ...nothingAllowed, file }), /memo slot 5/);
    assert.throws(
      () => unpickle(bytes(0x80, 2, 0x4e, 0x51, 0x2e), { ...nothingAllowed, file }),
      /x\.pkl: corrupt pickle: a persistent id/,
    );
  });
});
