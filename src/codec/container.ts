import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { crc32 } from '../io/crc32.js';
import { vocabBits, type TokenClip, type TokenFileHeader } from '../io/tokenfile.js';
import { writeFileAtomic } from '../util/atomic.js';
import { VtokError, check } from '../util/errors.js';
import { RangeDecoder, RangeEncoder } from './range-coder.js';
import { TOKEN_MODELS, TokenCoderState, type TokenModelName } from './token-model.js';

/**
 * The entropy-coded token container (.vtkc): the ids of one or more clips, range coded under an adaptive model
 * (token-model.ts), with the same header as a .vtok token file, so it decodes with the same tokenizer.
 *
 * Layout (little-endian):
 *   'VTKC' u16 version u8 model u8 reserved  u32 jsonLen  json { header, clips: [grid, …] }
 *   u32 payloadLen  payload (one range-coded stream, all clips in order)  u32 crc32(everything before)
 */

export const CODEC_VERSION = 1;
const MAGIC = 'VTKC';

export interface CodedTokens {
  header: TokenFileHeader;
  clips: TokenClip[];
  model: TokenModelName;
}

/** The range-coded stream of some clips' ids alone (the container's payload: what the ids cost). */
export function encodeIdStream(vocabSize: number, clips: TokenClip[], model: TokenModelName = 'context'): Uint8Array {
  check(TOKEN_MODELS.includes(model), `unknown token model "${model}" (known: ${TOKEN_MODELS.join(', ')})`);
  check(Number.isInteger(vocabSize) && vocabSize >= 2, `vocabulary size must be an integer ≥ 2, got ${vocabSize}`);
  const state = new TokenCoderState(model, vocabBits(vocabSize));
  const enc = new RangeEncoder();
  for (const c of clips) state.encodeClip(enc, c.ids, c.grid, vocabSize);
  return enc.finish();
}

/** Encodes clips of token ids into container bytes. */
export function encodeTokens(
  header: TokenFileHeader,
  clips: TokenClip[],
  model: TokenModelName = 'context',
): Uint8Array {
  const payload = encodeIdStream(header.vocabSize, clips, model);
  const json = Buffer.from(JSON.stringify({ header, clips: clips.map((c) => c.grid) }), 'utf8');
  const out = new Uint8Array(4 + 4 + 4 + json.length + 4 + payload.length + 4);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  dv.setUint16(4, CODEC_VERSION, true);
  dv.setUint8(6, TOKEN_MODELS.indexOf(model));
  dv.setUint32(8, json.length, true);
  out.set(json, 12);
  let o = 12 + json.length;
  dv.setUint32(o, payload.length, true);
  out.set(payload, o + 4);
  o += 4 + payload.length;
  dv.setUint32(o, crc32(out.subarray(0, o)), true);
  return out;
}

/** Decodes container bytes; every kind of damage is a VtokError naming `file`. */
export function decodeTokens(bytes: Uint8Array, file?: string): CodedTokens {
  const fail = (what: string): never => {
    throw new VtokError(what, file);
  };
  if (bytes.length < 12) fail(`${bytes.length} bytes: too short to be a vtok codec file (truncated?)`);
  if (Buffer.from(bytes.subarray(0, 4)).toString('latin1') !== MAGIC) fail('not a vtok codec file (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== CODEC_VERSION)
    fail(`codec file version ${version} is not supported (this vtok reads version ${CODEC_VERSION})`);
  const model = TOKEN_MODELS[dv.getUint8(6)] ?? fail(`unknown token model id ${dv.getUint8(6)} (damaged?)`);
  const jsonLen = dv.getUint32(8, true);
  if (12 + jsonLen + 4 > bytes.length)
    fail(`header says ${jsonLen} bytes of metadata, the file has ${bytes.length} in all (truncated)`);
  const payloadLen = dv.getUint32(12 + jsonLen, true);
  const end = 12 + jsonLen + 4 + payloadLen;
  if (end + 4 !== bytes.length)
    fail(
      end + 4 > bytes.length
        ? `payload of ${payloadLen} bytes runs past the end of the file (truncated)`
        : `${bytes.length - end - 4} stray bytes after the checksum (damaged)`,
    );
  if (crc32(bytes.subarray(0, end)) !== dv.getUint32(end, true)) fail('checksum mismatch: the file is damaged');
  let meta: { header: TokenFileHeader; clips: number[][] };
  try {
    meta = JSON.parse(Buffer.from(bytes.subarray(12, 12 + jsonLen)).toString('utf8'));
  } catch {
    return fail('metadata is not valid JSON (damaged)');
  }
  const { header, clips: grids } = meta;
  if (!header || !Number.isInteger(header.vocabSize) || header.vocabSize < 2 || !Array.isArray(grids))
    fail('metadata lacks the vocabulary size or clip grids (damaged)');
  const state = new TokenCoderState(model, vocabBits(header.vocabSize));
  const dec = new RangeDecoder(bytes.subarray(12 + jsonLen + 4, end), file);
  const clips = grids.map((grid) => ({ grid, ids: state.decodeClip(dec, grid, header.vocabSize, file) }));
  return { header, clips, model };
}

export function writeCodedTokens(
  path: string,
  header: TokenFileHeader,
  clips: TokenClip[],
  model: TokenModelName = 'context',
): number {
  const bytes = encodeTokens(header, clips, model);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

export function readCodedTokens(path: string): CodedTokens {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new VtokError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  return decodeTokens(bytes, path);
}

/** Whether a file starts like a codec container (else it may be a bit-packed .vtok token file). */
export function isCodedTokenFile(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(4);
      return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === MAGIC;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** The same face as the .vtok writer: clips go in one by one, the file appears (atomically) on close. */
export class CodedTokenWriter {
  private clips: TokenClip[] = [];
  constructor(
    readonly path: string,
    readonly header: TokenFileHeader,
    readonly model: TokenModelName = 'context',
  ) {}

  writeClip(ids: ArrayLike<number>, grid: number[] = this.header.grid): void {
    this.clips.push({ grid, ids: Int32Array.from(ids) });
  }

  close(): number {
    return writeCodedTokens(this.path, this.header, this.clips, this.model);
  }

  abort(): void {
    this.clips = [];
  }
}

/** The same face as openTokenFile: the header, then the clips. */
export function openCodedTokens(path: string): {
  header: TokenFileHeader;
  clips(): AsyncGenerator<TokenClip>;
  close(): Promise<void>;
} {
  const coded = readCodedTokens(path);
  return {
    header: coded.header,
    async *clips() {
      yield* coded.clips;
    },
    // read whole when opened: no handle stays open
    close: async () => {},
  };
}
