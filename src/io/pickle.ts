import { VtokError } from '../util/errors.js';

/**
 * A restricted unpickler (Python pickle protocols 0–5, the opcodes torch.save and Lightning checkpoints use). It runs
 * no code and imports nothing: a GLOBAL is only a name. The caller's `resolve` gives the few callables it allows
 * (for torch: the tensor rebuild functions, OrderedDict, the storage types; io/torch-checkpoint.ts); any other
 * name stays a `PyGlobal`, and calling or instantiating it gives an `Opaque` that records the class name and
 * nothing else, so hyper-parameters, optimizer state and pickled argparse or numpy objects are read past without
 * being built. Callers refuse an Opaque where they need data (the weights).
 *
 * Values: None → null, bool, int → number (bigint beyond 2^53), float → number, str → string, bytes → Uint8Array,
 * list and tuple → array, dict → Map, set → Set.
 */

/** A module-level name (`collections.OrderedDict`), unresolved: the unpickler never imports it. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object of a class the unpickler does not build: its class name, nothing constructed. */
export class Opaque {
  constructor(readonly className: string) {}
}

/** A callable the caller allows: it receives the pickled arguments (REDUCE, NEWOBJ). */
export interface PyCallable {
  call(args: unknown[]): unknown;
}

export interface UnpickleOptions {
  /** The callable a GLOBAL names, or undefined to keep the name unresolved (calls give Opaque objects). */
  resolve(module: string, name: string): PyCallable | undefined;
  /** Objects stored outside the pickle (torch: tensor storages), by persistent id. */
  persistentLoad?(pid: unknown): unknown;
  /** Named in error messages. */
  file?: string;
}

const MARK = Symbol('mark');

/** Unpickles `bytes`; every malformed input (truncated, unknown opcode, stack misuse) is a VtokError naming `file`. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const file = opts.file;
  let pos = 0;
  let op = 0;
  let opAt = 0;
  const fail = (msg: string): never => {
    throw new VtokError(`corrupt pickle: ${msg} (opcode 0x${op.toString(16)} at byte ${opAt})`, file);
  };
  const need = (n: number): void => {
    if (pos + n > bytes.length)
      throw new VtokError(`truncated pickle: it ends inside opcode 0x${op.toString(16)} at byte ${opAt}`, file);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    pos += 2;
    return dv.getUint16(pos - 2, true);
  };
  const u32 = (): number => {
    need(4);
    pos += 4;
    return dv.getUint32(pos - 4, true);
  };
  const u64 = (): number => {
    const lo = u32(),
      hi = u32();
    if (hi >= 2 ** 21) fail('a length beyond 2^53');
    return hi * 2 ** 32 + lo;
  };
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new VtokError(`truncated pickle: no end of line for opcode at byte ${opAt}`, file);
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array): string => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return fail('a string that is not valid UTF-8');
    }
  };

  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const pop = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail('no MARK on the stack');
    const items = stack.splice(at);
    items.shift();
    return items;
  };
  const global = (module: string, name: string): unknown => opts.resolve(module, name) ?? new PyGlobal(module, name);
  /** Calling (REDUCE) or instantiating (NEWOBJ, INST, OBJ) `f` with `args`. */
  const call = (f: unknown, args: unknown): unknown => {
    if (!Array.isArray(args)) fail('call arguments are not a tuple');
    if (f instanceof PyGlobal) return new Opaque(f.qualified);
    if (f instanceof Opaque) return new Opaque(f.className);
    if (f && typeof (f as PyCallable).call === 'function') return (f as PyCallable).call(args as unknown[]);
    return fail(`calling a ${describe(f)}`);
  };
  const setItems = (target: unknown, kv: unknown[]): void => {
    if (kv.length % 2) fail('an odd number of dict items');
    if (target instanceof Opaque) return; // a dict subclass not built: its items are skipped with it
    if (!(target instanceof Map)) fail(`setting items on a ${describe(target)}`);
    for (let i = 0; i < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const append = (target: unknown, items: unknown[]): void => {
    if (target instanceof Opaque) return;
    if (!Array.isArray(target)) fail(`appending to a ${describe(target)}`);
    (target as unknown[]).push(...items);
  };

  for (;;) {
    if (pos >= bytes.length) throw new VtokError('truncated pickle: it ends without a STOP opcode', file);
    opAt = pos;
    op = bytes[pos++]!;
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('an unknown protocol version');
        break;
      case 0x95: // FRAME (protocol 4): a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.length === 0) fail('stack underflow');
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x49: {
        // INT (text); protocol 0 writes booleans as I01 / I00
        const s = line();
        if (s === '01' || s === '00') stack.push(s === '01');
        else stack.push(parseInteger(s, fail));
        break;
      }
      case 0x4a: // BININT
        need(4);
        pos += 4;
        stack.push(dv.getInt32(pos - 4, true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4c: // LONG (text, trailing L)
        stack.push(parseInteger(line().replace(/L$/, ''), fail));
        break;
      case 0x8a: // LONG1
        stack.push(littleEndianInt(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(littleEndianInt(take(u32())));
        break;
      case 0x46: {
        // FLOAT (text)
        const v = Number(line());
        if (Number.isNaN(v)) fail('a malformed float');
        stack.push(v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        pos += 8;
        stack.push(dv.getFloat64(pos - 8, false));
        break;
      case 0x53: // STRING (quoted text)
        stack.push(line().replace(/^(['"])(.*)\1$/s, '$2'));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(take(u8())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop(),
          a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(),
          b = pop(),
          a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop(),
          k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (s instanceof Set) for (const x of items) s.add(x);
        else if (!(s instanceof Opaque)) fail(`adding items to a ${describe(s)}`);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(),
          module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL names that are not strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (keyword arguments ignored: the allowed callables take none)
        pop();
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x69: {
        // INST: "module\nname\n", arguments since the mark
        const module = line();
        const name = line();
        stack.push(call(global(module, name), popMark()));
        break;
      }
      case 0x6f: {
        // OBJ: class and arguments since the mark
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        stack.push(call(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD: state for the object below it. Dict-likes (OrderedDict's _metadata), tensors and Opaque objects
        // keep no state here.
        pop();
        const obj = top();
        if (obj === null || typeof obj !== 'object') fail(`BUILD on a ${describe(obj)}`);
        break;
      }
      case 0x50: // PERSID (text id)
        stack.push(persistent(line()));
        break;
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x70: // PUT (text index)
        memo.set(parseInteger(line(), fail) as number, top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
        stack.push(recall(parseInteger(line(), fail) as number));
        break;
      case 0x68: // BINGET
        stack.push(recall(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(recall(u32()));
        break;
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        fail('the extension registry (copyreg) is not supported');
        break;
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        fail('out-of-band buffers are not supported');
        break;
      default:
        throw new VtokError(`corrupt pickle: unknown opcode 0x${op.toString(16)} at byte ${opAt}`, file);
    }
  }

  function recall(i: number): unknown {
    if (!memo.has(i)) fail(`memo slot ${i} was never set`);
    return memo.get(i);
  }
  function persistent(pid: unknown): unknown {
    if (!opts.persistentLoad) return fail('a persistent id, and no persistent store was given');
    return opts.persistentLoad(pid);
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function parseInteger(s: string, fail: (m: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s.trim())) fail(`a malformed integer ${JSON.stringify(s)}`);
  const b = BigInt(s.trim());
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** A two's-complement little-endian integer (LONG1, LONG4). */
function littleEndianInt(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** A value's kind, for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof Opaque) return `${v.className} object`;
  if (v instanceof PyGlobal) return v.qualified;
  if (Array.isArray(v)) return 'list or tuple';
  if (v instanceof Map) return 'dict';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}
