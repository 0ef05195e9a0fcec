import { parentPort } from 'node:worker_threads';
import { fetchBatch, type ClipDataset } from './dataset.js';
import { openDataset, type DatasetSpec } from './open.js';

/**
 * The loader's worker thread: opens the dataset from its spec, then builds requested batches one after another
 * and hands each back with its buffer transferred (no copy). Decoding and rendering happen here, off the thread
 * that runs the engine.
 */
type Msg =
  | { type: 'init'; spec: DatasetSpec; concurrency: number }
  | { type: 'batch'; id: number; indices: Int32Array; epoch: number };

const port = parentPort!;
let ds: ClipDataset | undefined;
let concurrency = 2;
let chain: Promise<void> = Promise.resolve();

const errorOf = (e: unknown) => ({ name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) });

port.on('message', (msg: Msg) => {
  if (msg.type === 'init') {
    try {
      ds = openDataset(msg.spec);
      concurrency = msg.concurrency;
      port.postMessage({ type: 'ready', length: ds.length, shape: ds.shape, classes: ds.classes });
    } catch (e) {
      port.postMessage({ type: 'error', id: -1, ...errorOf(e) });
    }
    return;
  }
  chain = chain.then(async () => {
    try {
      const b = await fetchBatch(ds!, msg.indices, msg.epoch, concurrency);
      const transfer: ArrayBuffer[] = [b.data.buffer as ArrayBuffer];
      port.postMessage({ type: 'batch', id: msg.id, batch: b }, transfer);
    } catch (e) {
      port.postMessage({ type: 'error', id: msg.id, ...errorOf(e) });
    }
  });
});
