import { closeSync, fstatSync, openSync } from 'node:fs';
import type { writeSync } from 'node:fs';
import { writeFileAtomic, writeFileStreamedAtomic } from '../util/atomic.js';
import { VtokError, check } from '../util/errors.js';
import { readAt } from './read-at.js';
import {
  headerSizeOf,
  numelOf,
  parseHeaderJson,
  type SafeDType,
  type SafetensorsHeader,
  safetensorsLayout,
  dtypeSize,
  type SafeTensor,
  serializeSafetensors,
} from './safetensors.js';

/**
 * Safetensors files on disk. A file is read through a descriptor: the length prefix and the JSON header first,
 * then each tensor from its offset, one at a time, into a buffer of its own. No read holds the whole file, so
 * files past 2 GiB (where a whole-file read fails) load, and a caller can convert a tensor and drop its bytes
 * before reading the next. The format itself (parsing, validation, serialisation) is ./safetensors.ts.
 */
export interface SafetensorsFile extends SafetensorsHeader {
  readonly path: string;
  /** Reads one tensor's bytes from its offset in the file. */
  read(name: string): SafeTensor;
  close(): void;
}

/** Opens a file and reads and validates its header against the file's size; tensors are read on demand. */
export function openSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new VtokError(`cannot read: ${(e as Error).message}`, path);
  }
  try {
    const size = fstatSync(fd).size;
    const n = headerSizeOf(readAt(fd, Math.min(8, size), 0), size, path);
    const headerBytes = readAt(fd, n, 8);
    check(headerBytes.length === n, `truncated: could read only ${headerBytes.length} of ${n} header bytes`, path);
    const dataSize = size - 8 - n;
    const { tensors, metadata } = parseHeaderJson(headerBytes, dataSize, path);
    return {
      path,
      tensors,
      metadata,
      headerSize: n,
      dataSize,
      read(name) {
        const info = tensors.get(name);
        if (!info) throw new VtokError(`no tensor ${JSON.stringify(name)}`, path);
        const [begin, end] = info.dataOffsets;
        const data = readAt(fd, end - begin, 8 + n + begin);
        check(
          data.length === end - begin,
          `truncated: could read only ${data.length} of ${end - begin} bytes of tensor ${JSON.stringify(name)}`,
          path,
        );
        return { dtype: info.dtype, shape: info.shape.slice(), data };
      },
      close: () => closeSync(fd),
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Reads only the length prefix and the JSON header of a file (not the tensor data) and validates the header
 * against the file size. For `vtok info` on big checkpoints.
 */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const f = openSafetensors(path);
  f.close();
  const { tensors, metadata, headerSize, dataSize } = f;
  return { tensors, metadata, headerSize, dataSize };
}

/** Reads and validates a safetensors file, each tensor by its offset into a buffer of its own. */
export function readSafetensors(path: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const f = openSafetensors(path);
  try {
    return { tensors: new Map([...f.tensors.keys()].map((name) => [name, f.read(name)])), metadata: f.metadata };
  } finally {
    f.close();
  }
}

/** Writes a safetensors file atomically (temp file + fsync + rename). */
export function writeSafetensors(
  path: string,
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** A tensor to be written by writeSafetensorsStreamed: known dtype and shape, bytes made when its turn comes. */
export interface PlannedTensor {
  name: string;
  dtype: SafeDType;
  shape: number[];
}

/**
 * Writes a safetensors file tensor by tensor: the header first, from the tensors' dtypes and shapes, then each
 * tensor's bytes as `produce` returns them, in the file's order, so only one tensor is in memory at a time (a
 * multi-gigabyte import). Atomic like writeSafetensors: a failure, a full disk included, leaves no file.
 * `opts.writeSync` stands in for fs.writeSync (tests simulate a full disk); `opts.progress` is told after each tensor.
 */
export function writeSafetensorsStreamed(
  path: string,
  tensors: readonly PlannedTensor[],
  produce: (t: PlannedTensor) => Uint8Array,
  opts: {
    metadata?: Record<string, string>;
    writeSync?: typeof writeSync;
    progress?: (done: number, total: number) => void;
  } = {},
): void {
  const { head, order } = safetensorsLayout(tensors, opts.metadata);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  writeFileStreamedAtomic(
    path,
    (write) => {
      write(head);
      order.forEach((name, i) => {
        const t = byName.get(name)!;
        const bytes = produce(t);
        const want = numelOf(t.shape) * dtypeSize(t.dtype);
        if (bytes.length !== want)
          throw new VtokError(
            `tensor ${JSON.stringify(name)}: ${bytes.length} bytes made, the header says ${want} (${t.dtype} ` +
              `[${t.shape}])`,
            path,
          );
        write(bytes);
        opts.progress?.(i + 1, order.length);
      });
    },
    { writeSync: opts.writeSync },
  );
}
