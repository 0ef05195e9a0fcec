import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { readSafetensorsHeader } from '../../src/io/safetensors-file.js';
import { compare } from '../../src/parity/index.js';
import { readGolden } from '../../src/parity/golden.js';
import { importModel, type ImportOptions } from '../../src/tokenizers/import.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { tempDir } from '../io/fixtures.js';
import { golden, magvit2Yaml, rawOf, writeLarpFolder, writeMagvit2Checkpoint } from './release-fixtures.js';

/**
 * `vtok import` of release-shaped files built from the golden cases (./release-fixtures.ts): the imported model
 * directory must reproduce the golden outputs (ids exact, decoded pixels within 1e-4), take the EMA weights,
 * record provenance, and refuse bad input with one clear message, leaving nothing at --out.
 */
const dir = tempDir('import');
const quiet = { quiet: true };
let n = 0;
const fresh = () => join(dir, `out-${n++}`);

/** Golden case `name`'s encode ids (exact) and decode(ids) (max abs error) through a model directory. */
function checkGolden(modelDir: string, name: string, opts: { reverseBits?: number } = {}): void {
  const g = readGolden(golden(name));
  const { tokenizer } = loadTokenizer(modelDir);
  for (const sfx of ['', '_t1']) {
    if (!g.tensors.has(`input.x${sfx}`)) continue;
    let x = g.get(`input.x${sfx}`);
    if (name === 'magvit2_image') x = E.unsqueeze(x, 2);
    if (name === 'larp_tokenizer') x = E.sub(E.mul(x, 2), 1);
    const ids = tokenizer.encode(x);
    let want = g.get(`output.indices${sfx}`);
    if (opts.reverseBits) want = E.tensor(reversed(E.toArray(want) as number[], opts.reverseBits), want.shape, 'int64');
    const idReport = compare('ids', E.reshape(ids, want.shape as number[]), want);
    assert.equal(idReport.mismatches, 0, `${name}${sfx}: ids differ`);
    let recon: Tensor = tokenizer.decode(ids);
    if (name === 'magvit2_image') recon = E.squeeze(recon, 2);
    if (name === 'larp_tokenizer') recon = E.div(E.add(recon, 1), 2);
    const target = g.get(name === 'larp_tokenizer' ? 'output.recon_from_indices' : `output.recon${sfx}`);
    const r = compare('recon', recon, target);
    assert.ok(r.maxAbsError <= 1e-4, `${name}${sfx}: decode differs by ${r.maxAbsError}`);
  }
}

/** Bit reversal over `bits` bits of each id (LSB-first ↔ MSB-first). */
function reversed(ids: number[], bits: number): number[] {
  return ids.map((v) => {
    let r = 0;
    for (let b = 0; b < bits; b++) if (Math.floor(v / 2 ** b) % 2) r += 2 ** (bits - 1 - b);
    return r;
  });
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const config = (out: string) => JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));

/** Nothing at `out`, and no temp folder beside it. */
function nothingLeft(out: string): void {
  assert.ok(!existsSync(out), `${out} exists`);
  assert.deepEqual(
    readdirSync(dirname(out)).filter((f) => f.includes('.tmp')),
    [],
  );
}

describe('vtok import: Open-MAGVIT2', () => {
  const ckpt = writeMagvit2Checkpoint(join(dir, 'video_32_1024.ckpt'), 'magvit2_video');
  const yaml = join(dir, 'video.yaml');
  writeFileSync(yaml, magvit2Yaml('magvit2_video'));

  it('imports the EMA weights of a Lightning checkpoint with its YAML; the model reproduces the golden case', () => {
    const out = fresh();
    const r = importModel(ckpt, { out, config: yaml, ...quiet });
    assert.equal(r.release, 'Open-MAGVIT2 video tokenizer');
    assert.equal(r.kind, 'magvit2');
    checkGolden(out, 'magvit2_video');
    const c = config(out);
    assert.equal(c.model.kind, 'magvit2');
    assert.equal(c.model.config.kind, 'video');
    assert.deepEqual(c.data, { size: 32, frames: 17, channels: 3 });
    assert.equal(c.imported.licence, 'Apache-2.0');
    assert.equal(c.imported.weights, 'ema');
    assert.equal(c.imported.lfqOrder, 'lsb');
    assert.deepEqual(c.imported.source, { path: ckpt });
    assert.deepEqual(
      c.imported.files.map((f: { name: string; role: string; sha256: string }) => [f.name, f.role, f.sha256]),
      [
        ['video_32_1024.ckpt', 'weights', sha256(ckpt)],
        ['video.yaml', 'config', sha256(yaml)],
      ],
    );
    assert.ok(r.notes.some((m) => /LSB-first assumed.*--lfq-order msb/.test(m)));
    // only the model's weights: no discriminator, loss or EMA names
    const names = [...readSafetensorsHeader(join(out, 'checkpoints/step-0000000/model.safetensors')).tensors.keys()];
    assert.ok(names.every((k) => k.startsWith('encoder.') || k.startsWith('decoder.')));
  });

  it('--weights raw takes the raw weights; --half stores float16; hf-style origin is recorded', () => {
    const out = fresh();
    importModel(ckpt, {
      out,
      config: yaml,
      weights: 'raw',
      half: true,
      origin: { repository: 'TencentARC/Open-MAGVIT2-Tokenizer-262144-Video', revision: 'abc123' },
      ...quiet,
    });
    const { module } = loadTokenizer(out);
    const g = readGolden(golden('magvit2_video'));
    const name = 'decoder.conv_out.conv_1.weight';
    const got = module.stateDict().get(name)!.data as Float32Array;
    const raw = rawOf(g.params().get(name)!.data as Float32Array);
    let max = 0;
    for (let i = 0; i < raw.length; i++) max = Math.max(max, Math.abs(got[i]! - raw[i]!));
    assert.ok(max < 1e-3, `raw weights (float16) differ by ${max}`);
    const header = readSafetensorsHeader(join(out, 'checkpoints/step-0000000/model.safetensors'));
    assert.equal(header.tensors.get(name)!.dtype, 'F16');
    const c = config(out);
    assert.equal(c.imported.weights, 'raw');
    assert.equal(c.imported.half, true);
    assert.deepEqual(c.imported.source, {
      repository: 'TencentARC/Open-MAGVIT2-Tokenizer-262144-Video',
      revision: 'abc123',
    });
  });

  it('an image checkpoint in a folder, no config: read off the weights; reproduces the golden case', () => {
    const folder = join(dir, 'image-release');
    mkdirSync(folder);
    writeMagvit2Checkpoint(join(folder, 'imagenet_64.ckpt'), 'magvit2_image', { zip64: true });
    const out = fresh();
    const r = importModel(folder, { out, ...quiet });
    assert.equal(r.release, 'Open-MAGVIT2 image tokenizer');
    assert.ok(r.notes.some((m) => /read off the weights/.test(m)));
    checkGolden(out, 'magvit2_image');
    assert.equal(config(out).model.config.kind, 'image');
    assert.equal(config(out).data.frames, 1);
  });

  it("the LFQ bit order: read from an old checkpoint's quantize.mask, or given; ids reversed, pixels the same", () => {
    const old = writeMagvit2Checkpoint(join(dir, 'msb.ckpt'), 'magvit2_video', { msbMask: true });
    const out = fresh();
    const r = importModel(old, { out, config: yaml, ...quiet });
    assert.ok(r.notes.some((m) => /MSB-first, read from the checkpoint's quantize\.mask/.test(m)));
    assert.equal(config(out).model.config.lfq_order, 'msb');
    assert.equal(config(out).imported.lfqOrderFrom, 'quantize.mask');
    checkGolden(out, 'magvit2_video', { reverseBits: 10 });
    assert.throws(
      () => importModel(old, { out: fresh(), config: yaml, lfqOrder: 'lsb', ...quiet }),
      /--lfq-order lsb contradicts the checkpoint's quantize\.mask/,
    );
    const given = fresh();
    importModel(ckpt, { out: given, config: yaml, lfqOrder: 'msb', ...quiet });
    assert.equal(config(given).imported.lfqOrderFrom, '--lfq-order');
  });

  it('without EMA copies the raw weights are taken, and said so', () => {
    const noEma = writeMagvit2Checkpoint(join(dir, 'noema.ckpt'), 'magvit2_video', { noEma: true });
    const out = fresh();
    const r = importModel(noEma, { out, config: yaml, ...quiet });
    assert.ok(r.notes.some((m) => /no EMA weights/.test(m)));
    assert.equal(config(out).imported.weights, 'raw');
  });
});

describe('vtok import: LARP', () => {
  it('imports a PyTorchModelHubMixin folder; the model reproduces the golden case', () => {
    const folder = writeLarpFolder(join(dir, 'larp'));
    const out = fresh();
    const r = importModel(folder, { out, ...quiet });
    assert.equal(r.release, 'LARP tokenizer');
    assert.equal(r.licence, 'MIT');
    assert.deepEqual(r.notes, []);
    checkGolden(out, 'larp_tokenizer');
    const c = config(out);
    assert.equal(c.model.kind, 'larp');
    assert.deepEqual(c.data, { size: 32, frames: 8, channels: 3 });
    assert.deepEqual(
      c.imported.files.map((f: { name: string; role: string }) => [f.name, f.role]),
      [
        ['config.json', 'config'],
        ['model.safetensors', 'weights'],
      ],
    );
  });

  it('a config naming a prior whose weights are absent: imported without the prior, and said so', () => {
    const folder = writeLarpFolder(join(dir, 'larp-prior'), { prior: 'gptc-S' });
    const out = fresh();
    const r = importModel(folder, { out, ...quiet });
    assert.ok(r.notes.some((m) => /names the prior gptc-S .* imported without the prior/.test(m)));
    assert.equal(config(out).model.config.prior_model.name, 'none');
    assert.equal(config(out).imported.prior, 'dropped');
    checkGolden(out, 'larp_tokenizer');
  });
});

describe('vtok import: bad input', () => {
  const ckpt = writeMagvit2Checkpoint(join(dir, 'bad-base.ckpt'), 'magvit2_video');
  const yaml = join(dir, 'bad.yaml');
  writeFileSync(yaml, magvit2Yaml('magvit2_video'));

  const refuses = (input: string, opts: Partial<ImportOptions>, message: RegExp) => {
    const out = fresh();
    assert.throws(() => importModel(input, { out, ...quiet, ...opts }), message);
    nothingLeft(out);
  };

  it('a truncated or corrupt archive', () => {
    const bytes = readFileSync(ckpt);
    const truncated = join(dir, 'truncated.ckpt');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 5000));
    refuses(truncated, { config: yaml }, /truncated\.ckpt: .*(truncated|end-of-central-directory)/);
    // a flipped byte in data.pkl: its CRC-32 fails
    const corrupt = join(dir, 'corrupt.ckpt');
    const bad = Buffer.from(bytes);
    bad[bad.indexOf('global_step') + 2]! ^= 1;
    writeFileSync(corrupt, bad);
    refuses(corrupt, { config: yaml }, /corrupt ZIP: entry "checkpoint\/data\.pkl" fails its CRC-32 check/);
  });

  it('a foreign class among the weights', () => {
    const foreign = writeMagvit2Checkpoint(join(dir, 'foreign.ckpt'), 'magvit2_video', { foreignInWeights: true });
    refuses(foreign, { config: yaml }, /weight "encoder\.extra" is a pickled numpy\.core\.multiarray\._reconstruct/);
  });

  it('a config that does not fit the weights: missing, unexpected and mis-shaped names listed', () => {
    const wide = join(dir, 'wide.yaml');
    writeFileSync(wide, magvit2Yaml('magvit2_video', { ch: 64 }));
    refuses(
      ckpt,
      { config: wide },
      new RegExp(
        'the config \\(video tokenizer, from wide\\.yaml\\) does not fit the weights: .*mis-shaped: ' +
          'encoder\\.conv_in\\.conv_1\\.weight ' +
          '\\(the weights have \\[32,3,3,3,3\\], the config expects \\[64,3,3,3,3\\]\\)',
      ),
    );
    const deeper = join(dir, 'deeper.yaml');
    writeFileSync(deeper, magvit2Yaml('magvit2_video').replace('num_res_blocks: 1', 'num_res_blocks: 2'));
    refuses(ckpt, { config: deeper }, /\d+ missing: .*encoder\.down\.0\.block\.1\./);
    const shallow = join(dir, 'shallow.yaml');
    writeFileSync(shallow, magvit2Yaml('magvit2_video').replace('ch_mult: [1,2,1]', 'ch_mult: [1,2]'));
    refuses(ckpt, { config: shallow }, /\d+ unexpected: .*decoder\.up\.2\./);
  });

  it('an image checkpoint with a video config', () => {
    const image = writeMagvit2Checkpoint(join(dir, 'image.ckpt'), 'magvit2_image');
    refuses(
      image,
      { config: yaml },
      new RegExp(
        'the config describes the video tokenizer ' +
          '\\(class_path src\\.Open_MAGVIT2\\.models\\.video_lfqgan\\.VQModel\\) ' +
          "but image\\.ckpt holds the image tokenizer's weights",
      ),
    );
  });

  it('a full disk while writing the weights', () => {
    // the disk fills up after 20 kB of weights
    let written = 0;
    const full = ((fd: number, buf: Uint8Array, off: number, len: number) => {
      if (written > 20_000)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
      const n = writeSync(fd, buf, off, len);
      written += n;
      return n;
    }) as typeof writeSync;
    refuses(
      ckpt,
      { config: yaml, writeSync: full },
      /cannot write \(ENOSPC: no space left on device\); nothing was written/,
    );
  });

  it('an output folder that is not empty, and an input that is no release', () => {
    const out = fresh();
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    assert.throws(() => importModel(ckpt, { out, config: yaml, ...quiet }), /already exists and is not empty/);
    assert.equal(readFileSync(join(out, 'keep.txt'), 'utf8'), 'mine');
    const empty = join(dir, 'empty-folder');
    mkdirSync(empty);
    refuses(empty, {}, /not a release vtok can import; it reads a LARP tokenizer folder .*; or an Open-MAGVIT2/);
  });
});
