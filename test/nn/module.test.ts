import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import {
  Conv3d,
  ConvTransposeNd,
  Embedding,
  LayerNorm,
  Linear,
  type Mlp,
  Module,
  type MultiHeadAttention,
  Param,
  Sequential,
  TransformerBlock,
} from '../../src/nn/index.js';
import { loadModule, loadTensors, saveModule } from '../../src/nn/weights-file.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const golden = resolve(root, 'test/fixtures/golden');

// The shared transformer block with timm's names (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2).
class Block extends TransformerBlock {
  declare readonly attn: MultiHeadAttention & { proj: Linear };
  declare readonly mlp: Mlp & { fc1: Linear };
  constructor() {
    super({ dim: 16, heads: 4, norm: 'layer', mlp: { kind: 'gelu', hidden: 64 } });
  }
}

class Net extends Module {
  embed = new Embedding(10, 16);
  blocks = [new Block(), new Block()];
  head = new Sequential(new LayerNorm(16), new Linear(16, 10));
}

describe('modules', () => {
  it('name parameters like PyTorch state_dict keys and count them', () => {
    const net = new Net();
    const names = net.namedParams().map(([n]) => n);
    assert.deepEqual(names.slice(0, 5), [
      'embed.weight',
      'blocks.0.norm1.weight',
      'blocks.0.norm1.bias',
      'blocks.0.attn.qkv.weight',
      'blocks.0.attn.qkv.bias',
    ]);
    assert.ok(names.includes('blocks.1.mlp.fc2.bias'));
    assert.ok(names.includes('head.1.weight'));
    const block = 2 * 16 + 16 * 48 + 48 + 16 * 16 + 16 + 2 * 16 + 16 * 64 + 64 + 64 * 16 + 16;
    assert.equal(net.parameterCount(), 10 * 16 + 2 * block + 2 * 16 + 16 * 10 + 10);
  });
  it('initialise like PyTorch (kaiming-uniform bounds, ones/zeros for norms, N(0,1) embeddings)', () => {
    E.seed(0);
    const conv = new Conv3d(8, 16, 3);
    const bound = 1 / Math.sqrt(8 * 27);
    const w = E.toArray(conv.weight.value);
    assert.ok(w.every((v) => Math.abs(v) <= bound) && Math.max(...w.map(Math.abs)) > 0.9 * bound);
    const ct = new ConvTransposeNd(2, 4, 6, 3);
    assert.deepEqual([...ct.weight.shape], [4, 6, 3, 3]);
    const emb = E.toArray(new Embedding(100, 50).weight.value);
    const mean = emb.reduce((a, b) => a + b) / emb.length;
    const std = Math.sqrt(emb.reduce((a, b) => a + (b - mean) ** 2, 0) / emb.length);
    assert.ok(Math.abs(mean) < 0.05 && Math.abs(std - 1) < 0.05, `${mean} ${std}`);
    assert.deepEqual(E.toArray(new LayerNorm(3).weight!.value), [1, 1, 1]);
  });
  it('switch train/eval mode through the tree', () => {
    const net = new Net();
    net.eval();
    assert.equal(net.blocks[1]!.mlp.fc1.training, false);
    net.train();
    assert.equal(net.blocks[1]!.mlp.fc1.training, true);
  });
  it('save and load by name through safetensors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtok-'));
    const a = new Net(),
      b = new Net();
    saveModule(join(dir, 'w.safetensors'), a, { kind: 'test' });
    loadModule(join(dir, 'w.safetensors'), b);
    assert.deepEqual(E.toArray(b.blocks[1]!.attn.proj.weight.value), E.toArray(a.blocks[1]!.attn.proj.weight.value));
    const x = E.tensor([1, 2, 3], [1, 3], 'int64');
    const run = (n: Net) => E.toArray(n.head.forward(n.blocks[0]!.forward(n.embed.forward(x))));
    assert.deepEqual(run(a), run(b));
  });
  it('report missing, unexpected and mis-shaped keys together, naming the file', () => {
    class Small extends Module {
      fc = new Linear(4, 3);
      extra = new Param(E.zeros([2]));
    }
    const dir = mkdtempSync(join(tmpdir(), 'vtok-'));
    const path = join(dir, 'w.safetensors');
    class Other extends Module {
      fc = new Linear(4, 5);
      stray = new Param(E.zeros([1]));
    }
    saveModule(path, new Other());
    assert.throws(
      () => loadModule(path, new Small()),
      (e: Error) => {
        assert.match(e.message, /w\.safetensors/);
        assert.match(e.message, /fc\.weight: checkpoint has float32\[5,4\], model expects float32\[3,4\]/);
        assert.match(e.message, /missing 1 key\(s\): extra/);
        assert.match(e.message, /unexpected 1 key\(s\): stray/);
        return true;
      },
    );
    writeFileSync(path, readFileSync(path).subarray(0, 40));
    assert.throws(() => loadModule(path, new Small()), /w\.safetensors/);
  });
  it('read the golden LFQ file with its names and shapes', () => {
    const { tensors, metadata } = loadTensors(join(golden, 'lfq_openmagvit2.safetensors'));
    assert.ok(JSON.parse(metadata.config!));
    const x = tensors.get('input.x')!;
    assert.equal(x.dtype, 'float32');
    const idx = [...tensors.keys()].find((k) => k.includes('indices'))!;
    assert.equal(tensors.get(idx)!.dtype, 'int64');
  });
});
