import { writeFileSync } from 'node:fs';
import { crc32 } from '../../src/io/crc32.js';
import type { SafeDType } from '../../src/io/safetensors.js';

/**
 * A test-only writer of PyTorch checkpoints (torch.save's zip format with a protocol-2 pickle), to build
 * release-shaped files from the golden cases: Lightning checkpoints with raw and EMA weights, a discriminator,
 * pickled hyper-parameters with foreign classes, optimizer state. It emits what torch.save emits for these values
 * (GLOBAL + REDUCE for OrderedDict and the tensor rebuild functions, BINPERSID storages, memoised shared storages,
 * BUILD of an OrderedDict's `_metadata`), so the reader is tested on the real opcode sequences.
 */

/** Python values the writer knows. */
export type PyW =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyW[]
  | Tuple
  | Dict
  | TensorW
  | ObjW
  | FloatW;

/** A float that stays a float (BINFLOAT) even when whole. */
export class FloatW {
  constructor(readonly value: number) {}
}
export class Tuple {
  constructor(readonly items: PyW[]) {}
}
/**
 * A dict (`ordered`: collections.OrderedDict, as state_dicts are), entries in order; keys str or int. An
 * OrderedDict's `state` (a state_dict's {'_metadata': …}) is set by BUILD after the items, as pickle writes it.
 */
export class Dict {
  constructor(
    readonly entries: [string | number, PyW][],
    readonly ordered = false,
    readonly state?: PyW,
  ) {}
}
/** A storage: `data/<key>` of the archive. */
export class StorageW {
  constructor(
    readonly key: string,
    readonly dtype: SafeDType,
    readonly bytes: Uint8Array,
  ) {}
}
/** A tensor: a strided view of a storage. */
export class TensorW {
  constructor(
    readonly storage: StorageW,
    readonly shape: number[],
    readonly stride: number[],
    readonly offset = 0,
    readonly parameter = false,
  ) {}
}
/**
 * An instance of a foreign class: `GLOBAL module.name` then NEWOBJ (a class, e.g. argparse.Namespace, with `state`
 * set by BUILD) or REDUCE with `args` (a function, e.g. numpy's _reconstruct).
 */
export class ObjW {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly how: 'newobj' | 'reduce',
    readonly args: PyW[] = [],
    readonly state?: PyW,
  ) {}
}

const STORAGE_CLASS: Partial<Record<SafeDType, string>> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  BOOL: 'BoolStorage',
  U8: 'ByteStorage',
};

/** Pickles `value` (protocol 2); the storages it references are collected into `storages`. */
export function pickle(value: PyW, storages: Map<string, StorageW> = new Map()): Uint8Array {
  const out: number[] = [];
  const memo = new Map<string, number>();
  const byte = (...b: number[]) => out.push(...b);
  const u32 = (n: number) => byte(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  const put = (key?: string) => {
    const i = memo.size;
    if (key) memo.set(key, i);
    if (i < 256) byte(0x71, i);
    else {
      byte(0x72);
      u32(i);
    }
  };
  const get = (i: number) => {
    if (i < 256) byte(0x68, i);
    else {
      byte(0x6a);
      u32(i);
    }
  };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    byte(0x58);
    u32(b.length);
    out.push(...b);
    put();
  };
  const global = (module: string, name: string) => {
    const key = `global:${module}.${name}`;
    const known = memo.get(key);
    if (known !== undefined) return get(known);
    byte(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
    put(key);
  };
  const int = (n: number | bigint) => {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 256) byte(0x4b, n);
    else if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 65536) byte(0x4d, n & 255, n >>> 8);
    else if (typeof n === 'number' && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) {
      byte(0x4a);
      u32(n >>> 0);
    } else {
      // LONG1: two's complement, little-endian
      let v = BigInt(n);
      const bytes: number[] = [];
      for (;;) {
        bytes.push(Number(v & 255n));
        v >>= 8n;
        const sign = bytes[bytes.length - 1]! & 0x80;
        if ((v === 0n && !sign) || (v === -1n && sign)) break;
      }
      byte(0x8a, bytes.length, ...bytes);
    }
  };
  const items = (xs: PyW[]) => {
    for (const x of xs) save(x);
  };
  const dictItems = (d: Dict) => {
    if (d.entries.length === 0) return;
    byte(0x28); // MARK
    for (const [k, v] of d.entries) {
      save(k);
      save(v);
    }
    byte(0x75); // SETITEMS
  };
  function save(v: PyW): void {
    if (v === null) byte(0x4e);
    else if (v === true) byte(0x88);
    else if (v === false) byte(0x89);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) int(v);
      else save(new FloatW(v));
    } else if (typeof v === 'bigint') int(v);
    else if (v instanceof FloatW) {
      byte(0x47);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v.value, false);
      out.push(...b);
    } else if (typeof v === 'string') str(v);
    else if (v instanceof Uint8Array) {
      byte(0x43, v.length, ...v);
      put();
    } else if (Array.isArray(v)) {
      byte(0x5d);
      put();
      if (v.length) {
        byte(0x28);
        items(v);
        byte(0x65); // APPENDS
      }
    } else if (v instanceof Tuple) {
      if (v.items.length === 0) byte(0x29);
      else if (v.items.length <= 3) {
        items(v.items);
        byte([0x85, 0x86, 0x87][v.items.length - 1]!);
        put();
      } else {
        byte(0x28);
        items(v.items);
        byte(0x74);
        put();
      }
    } else if (v instanceof Dict) {
      if (v.ordered) {
        global('collections', 'OrderedDict');
        byte(0x29, 0x52); // EMPTY_TUPLE REDUCE
        put();
        dictItems(v);
        if (v.state !== undefined) {
          save(v.state);
          byte(0x62); // BUILD
        }
      } else {
        byte(0x7d);
        put();
        dictItems(v);
      }
    } else if (v instanceof TensorW) {
      if (v.parameter) global('torch._utils', '_rebuild_parameter');
      global('torch._utils', '_rebuild_tensor_v2');
      byte(0x28); // MARK
      const s = v.storage;
      storages.set(s.key, s);
      const known = memo.get(`storage:${s.key}`);
      if (known !== undefined) get(known);
      else {
        // persistent id ('storage', torch.<Type>Storage, key, location, numel), then BINPERSID
        byte(0x28);
        save('storage');
        global('torch', STORAGE_CLASS[s.dtype]!);
        save(s.key);
        save('cpu');
        int(s.bytes.length / sizeOf(s.dtype));
        byte(0x74); // TUPLE
        put();
        byte(0x51); // BINPERSID
        put(`storage:${s.key}`);
      }
      int(v.offset);
      save(new Tuple(v.shape));
      save(new Tuple(v.stride));
      save(false);
      save(new Dict([], true));
      byte(0x74, 0x52); // TUPLE REDUCE
      put();
      if (v.parameter) {
        save(true);
        save(new Dict([], true));
        byte(0x87, 0x52); // TUPLE3 REDUCE
        put();
      }
    } else if (v instanceof ObjW) {
      global(v.module, v.name);
      save(new Tuple(v.args));
      byte(v.how === 'newobj' ? 0x81 : 0x52);
      put();
      if (v.state !== undefined) {
        save(v.state);
        byte(0x62); // BUILD
      }
    } else throw new Error(`pickle: cannot write ${String(v)}`);
  }
  byte(0x80, 2); // PROTO 2
  save(value);
  byte(0x2e); // STOP
  return Uint8Array.from(out);
}

/** A state_dict as torch.save writes it: an OrderedDict whose `_metadata` attribute BUILD sets. */
export function stateDict(entries: [string, PyW][]): Dict {
  return new Dict(entries, true, new Dict([['_metadata', new Dict([['', new Dict([['version', 1]])]], true)]]));
}

function sizeOf(d: SafeDType): number {
  return { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 }[d];
}

export interface ZipFile {
  name: string;
  data: Uint8Array;
}

/**
 * A ZIP archive of stored entries, each entry's data aligned to 64 bytes by padding its local extra field (as
 * torch does). `zip64`: every size and offset saturated in the central directory and given in zip64 extra fields,
 * with a zip64 end record and locator (what an archive past 4 GiB has), however small the archive.
 */
export function zipArchive(files: ZipFile[], opts: { zip64?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  let pos = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    pos += b.length;
  };
  const central: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const f of files) {
    const name = enc.encode(f.name);
    const crc = crc32(f.data);
    const offset = pos;
    const base = offset + 30 + name.length + 4;
    const pad = (64 - (base % 64)) % 64;
    const local = new Uint8Array(30 + name.length + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, f.data.length, true);
    lv.setUint32(22, f.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.length, 0x4246, true); // torch's 'FB' padding field
    lv.setUint16(32 + name.length, pad, true);
    push(local);
    push(f.data);
    const extra = opts.zip64 ? 4 + 24 : 0;
    const c = new Uint8Array(46 + name.length + extra);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, opts.zip64 ? 0xffffffff : f.data.length, true);
    cv.setUint32(24, opts.zip64 ? 0xffffffff : f.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra, true);
    cv.setUint32(42, opts.zip64 ? 0xffffffff : offset, true);
    c.set(name, 46);
    if (opts.zip64) {
      const e = 46 + name.length;
      cv.setUint16(e, 0x0001, true);
      cv.setUint16(e + 2, 24, true);
      cv.setBigUint64(e + 4, BigInt(f.data.length), true);
      cv.setBigUint64(e + 12, BigInt(f.data.length), true);
      cv.setBigUint64(e + 20, BigInt(offset), true);
    }
    central.push(c);
  }
  const cdOffset = pos;
  for (const c of central) push(c);
  const cdSize = pos - cdOffset;
  if (opts.zip64) {
    const z = new Uint8Array(56 + 20);
    const zv = new DataView(z.buffer);
    const at = pos;
    zv.setUint32(0, 0x06064b50, true);
    zv.setBigUint64(4, 44n, true);
    zv.setUint16(12, 45, true);
    zv.setUint16(14, 45, true);
    zv.setBigUint64(24, BigInt(files.length), true);
    zv.setBigUint64(32, BigInt(files.length), true);
    zv.setBigUint64(40, BigInt(cdSize), true);
    zv.setBigUint64(48, BigInt(cdOffset), true);
    zv.setUint32(56, 0x07064b50, true);
    zv.setBigUint64(64, BigInt(at), true);
    zv.setUint32(72, 1, true);
    push(z);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, opts.zip64 ? 0xffff : files.length, true);
  ev.setUint16(10, opts.zip64 ? 0xffff : files.length, true);
  ev.setUint32(12, opts.zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, opts.zip64 ? 0xffffffff : cdOffset, true);
  push(end);
  const all = new Uint8Array(pos);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

/**
 * torch.save of `value` as bytes: `<name>/data.pkl`, `<name>/byteorder`, `<name>/data/<key>` per storage,
 * `<name>/version` (`extra` entries added, e.g. a TorchScript archive's constants.pkl).
 */
export function torchSave(
  value: PyW,
  opts: { name?: string; zip64?: boolean; extra?: ZipFile[]; withoutStorage?: string } = {},
): Uint8Array {
  const name = opts.name ?? 'archive';
  const storages = new Map<string, StorageW>();
  const pkl = pickle(value, storages);
  const files: ZipFile[] = [
    { name: `${name}/data.pkl`, data: pkl },
    { name: `${name}/byteorder`, data: new TextEncoder().encode('little') },
  ];
  for (const s of storages.values())
    if (s.key !== opts.withoutStorage) files.push({ name: `${name}/data/${s.key}`, data: s.bytes });
  files.push({ name: `${name}/version`, data: new TextEncoder().encode('3\n') }, ...(opts.extra ?? []));
  return zipArchive(files, { zip64: opts.zip64 });
}

export function writeTorchSave(path: string, value: PyW, opts: Parameters<typeof torchSave>[1] = {}): string {
  writeFileSync(path, torchSave(value, opts));
  return path;
}

/** Storage keys for one checkpoint: "0", "1", … as torch numbers them. */
export class Storages {
  private n = 0;
  make(dtype: SafeDType, bytes: Uint8Array): StorageW {
    return new StorageW(String(this.n++), dtype, bytes);
  }
  /** A contiguous float32 tensor of its own storage. */
  f32(values: Float32Array, shape: number[], parameter = false): TensorW {
    const s = this.make('F32', new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return new TensorW(s, shape, rowMajor(shape), 0, parameter);
  }
}

export function rowMajor(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
