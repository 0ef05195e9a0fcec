// A worker thread is an entry point: it installs the engine's Node backend for the tokenizer it runs.
import '../engine/index.js';
import { parentPort, workerData } from 'node:worker_threads';
import { VtokError } from '../util/errors.js';
import { ChunkTokenizer, type WorkerInit } from './tokenize-corpus.js';

/** A `vtok tokenize` worker thread: loads the tokenizer once, then turns each chunk it is sent into a shard. */
const port = parentPort!;
try {
  const t = new ChunkTokenizer(workerData as WorkerInit);
  port.on('message', async (chunk: { ordinals: number[]; file: string }) => {
    try {
      const r = await t.run(chunk.ordinals, chunk.file);
      port.postMessage({ file: chunk.file, ...r });
    } catch (e) {
      port.postMessage({ error: (e as Error).message, vtok: e instanceof VtokError });
    }
  });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ error: (e as Error).message, vtok: e instanceof VtokError });
}
