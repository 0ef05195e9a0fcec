import { Worker } from 'node:worker_threads';
import { VtokError, check } from '../util/errors.js';
import { fetchBatch, type Batch, type ClipDataset, type ClipShape } from './dataset.js';
import { openDataset, type DatasetSpec } from './open.js';
import { SeededRng, hashSeed } from './seeded.js';

/**
 * Batches of N×C×T×H×W float clips from a dataset spec. By default a worker thread builds them, `prefetch`
 * batches ahead, so the engine's thread never waits on decoding. The order is a pure function of (seed, epoch),
 * so a resumed run (startBatch) sees the same batches it would have.
 */
export interface LoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  /** Epochs to run (default 1; Infinity for an endless stream). */
  epochs?: number;
  /** Drop a last, smaller batch (default false). */
  dropLast?: boolean;
  /** Batches requested ahead of the consumer (default 2). */
  prefetch?: number;
  /** Build batches in a worker thread (default true). */
  worker?: boolean;
  /** Clips fetched at once within a batch (default 2). */
  concurrency?: number;
  /** Skip this many batches of the plan (to resume). */
  startBatch?: number;
}

/** The index order: epoch by epoch, shuffled by (seed, epoch), cut into batches. */
export function* batchPlan(length: number, opts: LoaderOptions): Generator<{ indices: Int32Array; epoch: number }> {
  const { batchSize } = opts;
  check(Number.isInteger(batchSize) && batchSize > 0, `batchSize must be a positive integer, got ${batchSize}`);
  const epochs = opts.epochs ?? 1;
  let skip = opts.startBatch ?? 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order =
      opts.shuffle === false
        ? Int32Array.from({ length }, (_, i) => i)
        : new SeededRng(hashSeed(opts.seed ?? 0, epoch, 0xba7c)).permutation(length);
    const full = Math.floor(length / batchSize);
    const count = opts.dropLast || length % batchSize === 0 ? full : full + 1;
    check(count > 0, `batch size ${batchSize} is larger than the dataset (${length} clips) and dropLast is set`);
    if (skip >= count) {
      skip -= count;
      continue;
    }
    for (let b = skip; b < count; b++)
      yield { indices: order.slice(b * batchSize, Math.min(length, (b + 1) * batchSize)), epoch };
    skip = 0;
  }
}

export interface Loader extends AsyncIterable<Batch> {
  readonly length: number;
  readonly shape: ClipShape;
  readonly classes?: string[];
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** Stops the worker (also done when iteration ends or breaks). */
  close(): Promise<void>;
}

interface Source {
  request(indices: Int32Array, epoch: number): Promise<Batch>;
  close(): Promise<void>;
}

function inProcess(ds: ClipDataset, concurrency: number): Source {
  return { request: (indices, epoch) => fetchBatch(ds, indices, epoch, concurrency), close: async () => {} };
}

function rebuildError(m: { name: string; message: string }): Error {
  if (m.name === 'VtokError') return new VtokError(m.message);
  const e = new Error(m.message);
  e.name = m.name;
  return e;
}

async function inWorker(
  spec: DatasetSpec,
  concurrency: number,
): Promise<{ source: Source; length: number; shape: ClipShape; classes?: string[] }> {
  const worker = new Worker(new URL('./loader-worker.js', import.meta.url));
  const pending = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  const fail = (e: Error) => {
    dead ??= e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const ready = new Promise<{ length: number; shape: ClipShape; classes?: string[] }>((resolve, reject) => {
    worker.on(
      'message',
      (m: {
        type: string;
        id: number;
        batch?: Batch;
        name: string;
        message: string;
        length: number;
        shape: ClipShape;
        classes?: string[];
      }) => {
        if (m.type === 'ready') return resolve(m);
        if (m.type === 'error' && m.id === -1) return reject(rebuildError(m));
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (pending.size === 0) worker.unref(); // idle: don't keep the process alive
        if (m.type === 'batch') p.resolve(m.batch!);
        else p.reject(rebuildError(m));
      },
    );
    worker.on('error', (e) => {
      reject(e);
      fail(e);
    });
    worker.on('exit', (code) => fail(new Error(`data loader worker exited (code ${code})`)));
  });
  worker.postMessage({ type: 'init', spec, concurrency });
  let info: Awaited<typeof ready>;
  try {
    info = await ready;
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  worker.unref();
  const source: Source = {
    request(indices, epoch) {
      if (dead) return Promise.reject(dead);
      const id = nextId++;
      worker.ref();
      return new Promise<Batch>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ type: 'batch', id, indices, epoch });
      });
    },
    async close() {
      dead ??= new Error('data loader closed');
      // An idle worker is unref'd, and terminate() alone does not keep the process alive: with nothing else pending
      // Node would exit (code 13, unsettled await) before it settles. A timer holds the event loop open meanwhile.
      const keepAlive = setInterval(() => {}, 1 << 30);
      try {
        await worker.terminate();
      } finally {
        clearInterval(keepAlive);
      }
    },
  };
  return { source, ...info };
}

/** Opens a dataset (in a worker unless `worker: false`) and returns an iterable of its batches. */
export async function createLoader(spec: DatasetSpec, opts: LoaderOptions): Promise<Loader> {
  const concurrency = opts.concurrency ?? 2;
  let source: Source;
  let length: number;
  let shape: ClipShape;
  let classes: string[] | undefined;
  if (opts.worker === false) {
    const ds = openDataset(spec);
    source = inProcess(ds, concurrency);
    ({ length, shape, classes } = ds);
  } else {
    ({ source, length, shape, classes } = await inWorker(spec, concurrency));
  }
  const prefetch = Math.max(1, opts.prefetch ?? 2);
  const batchesPerEpoch = opts.dropLast ? Math.floor(length / opts.batchSize) : Math.ceil(length / opts.batchSize);
  let iterated = false;
  return {
    length,
    shape,
    classes,
    batchesPerEpoch,
    close: () => source.close(),
    async *[Symbol.asyncIterator]() {
      check(!iterated, 'a loader can be iterated once; create another for another pass');
      iterated = true;
      const plan = batchPlan(length, opts);
      const queue: Promise<Batch>[] = [];
      const refill = () => {
        while (queue.length < prefetch) {
          const n = plan.next();
          if (n.done) break;
          const p = source.request(n.value.indices, n.value.epoch);
          p.catch(() => {}); // rejections surface when this batch is awaited
          queue.push(p);
        }
      };
      try {
        refill();
        while (queue.length) {
          const b = await queue.shift()!;
          refill();
          yield b;
        }
      } finally {
        await source.close();
      }
    },
  };
}
