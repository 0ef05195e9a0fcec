import { closeSync, openSync, readSync } from 'node:fs';
import { VtokError, check } from '../util/errors.js';
import { describe, Opaque, type PyCallable, PyGlobal, unpickle } from './pickle.js';
import { dtypeSize, numelOf, type SafeDType, type SafeTensor } from './safetensors.js';
import { fromFloat32, toFloat32 } from './tensor-data.js';
import { looksLikeZip, openZip, type ZipArchive, zipCrc32 } from './zip.js';

/**
 * PyTorch checkpoints in the zip format torch.save writes since PyTorch 1.6 (`.ckpt` of Lightning, `.pt`, `.pth`,
 * `pytorch_model.bin`), read without Python. `<name>/data.pkl` is unpickled with a restricted unpickler
 * (./pickle.ts) that builds only what `torch.load(weights_only=True)` allows: OrderedDict, the tensor and parameter
 * rebuild functions, the storage types. Anything else (hyper-parameters, optimizer and loop state, pickled argparse
 * or numpy objects) is read past as an `Opaque` placeholder naming its class, and refused by name only where
 * weights are asked for (stateDictOf). Tensors are references (storage, offset, shape, stride): their bytes are read
 * on demand, one tensor at a time, by offset from the archive's stored `<name>/data/<key>` entries, so a 3 GB
 * checkpoint is never held whole. The legacy pre-1.6 format and TorchScript archives are refused with a message
 * saying what to do.
 */

/** A typed storage: one `data/<key>` entry of `numel` elements. */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: SafeDType,
    readonly numel: number,
  ) {}
}

/** A tensor as pickled: a strided view of a storage (no bytes read yet). */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    /** In elements. */
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
  get dtype(): SafeDType {
    return this.storage.dtype;
  }
}

export interface TorchCheckpoint {
  readonly path: string;
  /** The unpickled top-level object (a Lightning checkpoint's dict, or a bare state_dict). */
  readonly root: unknown;
  /**
   * One tensor's values, contiguous and row-major, read from the archive by offset. Float16, bfloat16 and float64
   * come back as float32 (what vtok computes in); integer and bool dtypes unchanged.
   */
  read(t: TorchTensor, name?: string): SafeTensor;
  close(): void;
}

/** torch's legacy storage class names → dtypes. */
const STORAGES: Record<string, SafeDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** A storage class named in a persistent id; calling it is not something torch.save writes. */
class StorageType implements PyCallable {
  constructor(
    readonly name: string,
    readonly dtype: SafeDType,
  ) {}
  call(): unknown {
    return new Opaque(`torch.${this.name}`);
  }
}

const fn = (call: (args: unknown[]) => unknown): PyCallable => ({ call });

/** The rebuild functions' `storage, offset, size, stride` arguments as a tensor, or an Opaque when they are not. */
function rebuildTensor(args: unknown[]): unknown {
  const [storage, offset, size, stride] = args;
  const ints = (v: unknown): v is number[] =>
    Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  if (!(storage instanceof TorchStorage)) return storage instanceof Opaque ? storage : new Opaque('torch.Tensor');
  if (typeof offset !== 'number' || !ints(size) || !ints(stride) || size.length !== stride.length)
    throw new VtokError(`a tensor with malformed offset/size/stride (${JSON.stringify([offset, size, stride])})`);
  return new TorchTensor(storage, offset, size.slice(), stride.slice());
}

/** Tensor types _rebuild_from_type_v2 may rebuild as plain tensors (torch.load(weights_only=True) allows these). */
const PLAIN_TENSOR_TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

/** What a torch checkpoint's GLOBALs may resolve to; everything else stays a name (pickle.ts). */
function resolveTorch(module: string, name: string): PyCallable | undefined {
  const q = `${module}.${name}`;
  switch (q) {
    case 'collections.OrderedDict':
      return fn((args) => {
        const m = new Map<unknown, unknown>();
        // OrderedDict([(k, v), …]) (protocol 0/1); torch.save's protocol 2 passes no arguments and SETITEMS after.
        for (const kv of Array.isArray(args[0]) ? args[0] : []) if (Array.isArray(kv)) m.set(kv[0], kv[1]);
        return m;
      });
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return fn(rebuildTensor);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return fn((args) => args[0]);
    case 'torch._tensor._rebuild_from_type_v2':
      return fn(([func, type, args]) => {
        if (!(type instanceof PyGlobal) || !PLAIN_TENSOR_TYPES.has(type.qualified))
          return new Opaque(type instanceof PyGlobal ? type.qualified : 'torch.Tensor subclass');
        if (!func || typeof (func as PyCallable).call !== 'function' || !Array.isArray(args))
          return new Opaque(func instanceof PyGlobal ? func.qualified : 'torch.Tensor');
        return (func as PyCallable).call(args);
      });
  }
  if (module === 'torch' && Object.hasOwn(STORAGES, name)) return new StorageType(name, STORAGES[name]!);
  return undefined;
}

/** ('storage', storage type, key, location, numel) → a TorchStorage; a storage of another type → an Opaque. */
function loadStorage(pid: unknown, file: string): unknown {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5)
    throw new VtokError(`corrupt checkpoint: unknown persistent id ${JSON.stringify(describe(pid))}`, file);
  const [, type, key, , numel] = pid as [string, unknown, unknown, unknown, unknown];
  if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
    throw new VtokError('corrupt checkpoint: a storage with a malformed key or size', file);
  if (type instanceof StorageType) return new TorchStorage(key, type.dtype, numel);
  return new Opaque(`storage of ${type instanceof PyGlobal ? type.qualified : describe(type)}`);
}

const LEGACY =
  'a PyTorch checkpoint in the legacy (pre-1.6) serialization format; vtok reads the zip format torch.save ' +
  'writes since PyTorch 1.6: re-save it in Python with torch.save(torch.load(path), new_path)';

/** The first bytes of a file, to tell the formats apart. */
function head(path: string, n: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new VtokError(`cannot read: ${(e as Error).message}`, path);
  }
  try {
    const buf = new Uint8Array(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** Opens a torch.save checkpoint: the archive's directory and data.pkl are read; tensor bytes on demand. */
export function openTorchCheckpoint(path: string): TorchCheckpoint {
  const h = head(path, 512);
  if (!looksLikeZip(h)) {
    if (h[0] === 0x80) throw new VtokError(LEGACY, path);
    if (h.length >= 262 && String.fromCharCode(...h.subarray(257, 262)) === 'ustar')
      throw new VtokError(LEGACY.replace('format', 'format (a tar archive)'), path);
    throw new VtokError(
      h.length === 0
        ? 'empty file: not a PyTorch checkpoint'
        : 'not a PyTorch checkpoint (neither the zip format of torch.save nor a pickle)',
      path,
    );
  }
  const zip = openZip(path);
  try {
    return readCheckpoint(zip, path);
  } catch (e) {
    zip.close();
    throw e;
  }
}

function readCheckpoint(zip: ZipArchive, path: string): TorchCheckpoint {
  const names = [...zip.entries.keys()];
  const pkl = names.find((n) => /^[^/]*\/?data\.pkl$/.test(n));
  if (!pkl) {
    if (names.some((n) => /(^|\/)constants\.pkl$/.test(n) || /(^|\/)code\//.test(n)))
      throw new VtokError(TORCHSCRIPT, path);
    throw new VtokError('a ZIP archive without data.pkl: not a torch.save checkpoint', path);
  }
  const prefix = pkl.slice(0, -'data.pkl'.length);
  if (zip.entries.has(`${prefix}constants.pkl`) || names.some((n) => n.startsWith(`${prefix}code/`)))
    throw new VtokError(TORCHSCRIPT, path);
  if (zip.entries.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim();
    check(order === 'little', `tensors are stored ${order}-endian; vtok reads little-endian checkpoints`, path);
  }
  const root = unpickle(zip.read(pkl), {
    resolve: resolveTorch,
    persistentLoad: (pid) => loadStorage(pid, path),
    file: `${path} (${pkl})`,
  });
  const checked = new Set<string>();
  return {
    path,
    root,
    read(t, name = 'tensor') {
      const s = t.storage;
      const entry = `${prefix}data/${s.key}`;
      const z = zip.entries.get(entry);
      const what = `tensor ${JSON.stringify(name)}`;
      if (!z) throw new VtokError(`${what}: its storage ${entry} is missing from the archive`, path);
      const es = dtypeSize(s.dtype);
      if (!checked.has(entry)) {
        check(
          z.size === s.numel * es,
          `${what}: storage ${entry} has ${z.size} bytes, the pickle says ${s.numel} ${s.dtype} elements`,
          path,
        );
        checked.add(entry);
      }
      const n = numelOf(t.shape);
      let data: Uint8Array;
      if (n === 0) data = new Uint8Array(0);
      else {
        let last = t.offset;
        t.shape.forEach((d, i) => {
          last += (d - 1) * t.stride[i]!;
        });
        check(
          last < s.numel,
          `${what}: shape [${t.shape}] with stride [${t.stride}] at offset ${t.offset} reaches past its storage ` +
            `of ${s.numel} elements (corrupt checkpoint)`,
          path,
        );
        const span = zip.readRange(entry, t.offset * es, (last - t.offset + 1) * es);
        if (t.offset === 0 && span.length === z.size)
          check(zipCrc32(span) === z.crc32, `corrupt checkpoint: storage ${entry} fails its CRC-32 check`, path);
        data = isContiguous(t.shape, t.stride) ? span : gather(span, t.shape, t.stride, es);
      }
      const out: SafeTensor = { dtype: t.dtype, shape: t.shape.slice(), data };
      return t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F64'
        ? fromFloat32(toFloat32(out), out.shape)
        : out;
    },
    close: () => zip.close(),
  };
}

const TORCHSCRIPT =
  'a TorchScript archive (torch.jit.save), not a torch.save checkpoint: vtok reads weights, not scripted ' +
  "programs; save the model's state_dict with torch.save(model.state_dict(), path)";

/** Row-major strides, dimensions of size 1 ignored (torch gives them any stride). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

/** The strided view's elements, row-major, from `span` (which starts at the view's first element). */
function gather(span: Uint8Array, shape: readonly number[], stride: readonly number[], es: number): Uint8Array {
  const n = numelOf(shape);
  const out = new Uint8Array(n * es);
  const idx = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let k = 0; k < n; k++) {
    out.set(span.subarray(src * es, src * es + es), k * es);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      src += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= stride[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The weights of an unpickled checkpoint, by name: a Lightning checkpoint's `state_dict`, or the top level when it
 * is itself a state_dict (`torch.save(model.state_dict())`, `pytorch_model.bin`). Every value must be a tensor: a
 * pickled object of another class among the weights is refused by its class name.
 */
export function stateDictOf(root: unknown, file?: string): Map<string, TorchTensor> {
  const sd = root instanceof Map && root.has('state_dict') ? root.get('state_dict') : root;
  if (!(sd instanceof Map))
    throw new VtokError(`holds no state_dict (a dict of tensors): its top level is a ${describe(sd)}`, file);
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of sd) {
    if (typeof k !== 'string')
      throw new VtokError(`the state_dict has a key that is not a string (${describe(k)})`, file);
    if (v instanceof TorchTensor) out.set(k, v);
    else if (v instanceof Opaque)
      throw new VtokError(
        `weight ${JSON.stringify(k)} is a pickled ${v.className} object, not a tensor: refused (among the ` +
          'weights vtok builds only what torch.load(weights_only=True) allows)',
        file,
      );
    else throw new VtokError(`weight ${JSON.stringify(k)} is a ${describe(v)}, not a tensor`, file);
  }
  return out;
}
