import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Opaque } from '../../src/io/pickle.js';
import { fromFloat32, toBigInt64, toFloat32 } from '../../src/io/tensor-data.js';
import { openTorchCheckpoint, stateDictOf, TorchTensor } from '../../src/io/torch-checkpoint.js';
import { tempDir } from './fixtures.js';
import { Dict, ObjW, StorageW, Storages, stateDict, TensorW, torchSave, writeTorchSave } from './torch-writer.js';

const dir = tempDir('torch-ckpt');
const f32 = (xs: number[]) => Float32Array.from(xs);
const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A Lightning-like checkpoint: tensors of every kind the reader handles, and state that is not weights. */
function sample(): ReturnType<typeof stateDict> extends infer _ ? Dict : never {
  const st = new Storages();
  const base = f32([0, 1, 2, 3, 4, 5]);
  const shared = st.make('F32', bytesOf(base));
  const half = fromFloat32(f32([1.5, -2, 65504, 0.1]), [4], 'F16');
  const bf16 = fromFloat32(f32([1.5, -2, 3e38, 0.1]), [4], 'BF16');
  return new Dict([
    ['epoch', 3],
    [
      'state_dict',
      stateDict([
        ['plain', st.f32(f32([1, 2, 3, 4, 5, 6]), [2, 3])],
        // a transposed view [3, 2] of the shared [2, 3] storage, and a slice of it at an offset
        ['transposed', new TensorW(shared, [3, 2], [1, 3])],
        ['row1', new TensorW(shared, [3], [1], 3)],
        ['param', st.f32(f32([7, 8]), [2], true)],
        ['half', new TensorW(st.make('F16', half.data), [4], [1])],
        ['bf16', new TensorW(st.make('BF16', bf16.data), [4], [1])],
        ['steps', new TensorW(st.make('I64', bytesOf(BigInt64Array.from([5n, -1n]))), [2], [1])],
        ['scalar', new TensorW(st.make('F32', bytesOf(f32([0.999]))), [], [])],
      ]),
    ],
    ['hyper_parameters', new Dict([['args', new ObjW('argparse', 'Namespace', 'newobj', [], new Dict([['lr', 1]]))]])],
    ['optimizer_states', [new Dict([['state', new Dict([[0, new Dict([['exp_avg', st.f32(f32([0]), [1])]])]])]])]],
  ]);
}

describe('PyTorch checkpoints (zip format)', () => {
  it('reads every tensor lazily: strided and offset views, parameters, float16/bfloat16 as float32, int64', () => {
    for (const zip64 of [false, true]) {
      const path = writeTorchSave(join(dir, `sample${zip64 ? '64' : ''}.ckpt`), sample(), { zip64, name: 'epoch=3' });
      const ck = openTorchCheckpoint(path);
      try {
        const sd = stateDictOf(ck.root, path);
        assert.deepEqual([...sd.keys()], ['plain', 'transposed', 'row1', 'param', 'half', 'bf16', 'steps', 'scalar']);
        const v = (k: string) => Array.from(toFloat32(ck.read(sd.get(k)!, k)));
        assert.deepEqual(v('plain'), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(v('transposed'), [0, 3, 1, 4, 2, 5]);
        assert.deepEqual(v('row1'), [3, 4, 5]);
        assert.deepEqual(v('param'), [7, 8]);
        assert.equal(ck.read(sd.get('half')!).dtype, 'F32');
        assert.deepEqual(v('half'), [1.5, -2, 65504, Math.fround(0.0999755859375)]);
        assert.equal(ck.read(sd.get('bf16')!).dtype, 'F32');
        assert.deepEqual(v('bf16').slice(0, 2), [1.5, -2]);
        assert.deepEqual(Array.from(toBigInt64(ck.read(sd.get('steps')!))), [5n, -1n]);
        assert.deepEqual(ck.read(sd.get('scalar')!).shape, []);
        // what is not weights was read past, not built
        const hp = (ck.root as Map<string, Map<string, unknown>>).get('hyper_parameters')!;
        assert.ok(hp.get('args') instanceof Opaque && (hp.get('args') as Opaque).className === 'argparse.Namespace');
      } finally {
        ck.close();
      }
    }
  });

  it('refuses a foreign class among the weights by name', () => {
    const path = writeTorchSave(
      join(dir, 'numpy.ckpt'),
      new Dict([
        [
          'state_dict',
          stateDict([
            ['ok', new Storages().f32(f32([1]), [1])],
            ['bad', new ObjW('numpy.core.multiarray', '_reconstruct', 'reduce', [0])],
          ]),
        ],
      ]),
    );
    const ck = openTorchCheckpoint(path);
    try {
      assert.throws(
        () => stateDictOf(ck.root, path),
        /weight "bad" is a pickled numpy\.core\.multiarray\._reconstruct/,
      );
    } finally {
      ck.close();
    }
  });

  it('says what other formats are, and refuses truncated or corrupt archives', () => {
    const legacy = join(dir, 'legacy.pt');
    writeFileSync(legacy, Uint8Array.from([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]));
    assert.throws(() => openTorchCheckpoint(legacy), /legacy \(pre-1\.6\) serialization format.*torch\.save/);
    const script = join(dir, 'script.pt');
    writeFileSync(
      script,
      torchSave(new Dict([]), { extra: [{ name: 'archive/constants.pkl', data: new Uint8Array(3) }] }),
    );
    assert.throws(() => openTorchCheckpoint(script), /TorchScript archive/);
    const text = join(dir, 'text.ckpt');
    writeFileSync(text, 'hello');
    assert.throws(() => openTorchCheckpoint(text), /not a PyTorch checkpoint/);

    const good = torchSave(sample());
    const truncated = join(dir, 'truncated.ckpt');
    writeFileSync(truncated, good.subarray(0, Math.floor(good.length * 0.7)));
    assert.throws(() => openTorchCheckpoint(truncated), /truncated\.ckpt: .*truncated or not a ZIP archive/);

    // one flipped bit in a tensor's storage: its CRC-32 no longer matches
    const corrupt = join(dir, 'corrupt.ckpt');
    const bad = good.slice();
    const at = Buffer.from(bad).indexOf(Buffer.from(bytesOf(f32([1, 2, 3, 4, 5, 6]))));
    bad[at + 5]! ^= 0x10;
    writeFileSync(corrupt, bad);
    const ck = openTorchCheckpoint(corrupt);
    try {
      const sd = stateDictOf(ck.root);
      assert.throws(() => ck.read(sd.get('plain')!), /corrupt checkpoint: storage .* fails its CRC-32 check/);
    } finally {
      ck.close();
    }

    // a storage the pickle names but the archive lacks
    const missing = join(dir, 'missing.ckpt');
    writeFileSync(missing, torchSave(sample(), { withoutStorage: '0' }));
    const ck2 = openTorchCheckpoint(missing);
    try {
      const t = stateDictOf(ck2.root).get('transposed')!;
      assert.ok(t instanceof TorchTensor);
      assert.throws(() => ck2.read(t, 'transposed'), /storage archive\/data\/0 is missing/);
    } finally {
      ck2.close();
    }
    // a view past the end of its storage
    const past = join(dir, 'past.ckpt');
    const s = new StorageW('0', 'F32', bytesOf(f32([1, 2])));
    writeFileSync(past, torchSave(stateDict([['w', new TensorW(s, [3], [1])]])));
    const ck3 = openTorchCheckpoint(past);
    try {
      assert.throws(() => ck3.read(stateDictOf(ck3.root).get('w')!, 'w'), /reaches past its storage/);
    } finally {
      ck3.close();
    }
    assert.ok(readFileSync(past).length > 0);
  });
});
