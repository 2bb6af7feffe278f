import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { writeFileDurable } from '../core/durable-file';

/**
 * The safetensors format (what PyTorch, JAX and NumPy users read):
 *   8 bytes   N, the header length, unsigned little-endian 64-bit
 *   N bytes   a JSON object {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
 *             padded with spaces so that the data starts on an 8-byte boundary
 *   rest      the tensors' raw little-endian bytes, row-major; offsets are relative to the start of this
 *             region, and the tensors tile it exactly (no gaps, no overlap, nothing after the last).
 */

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Raw little-endian bytes, row-major. */
  readonly data: Uint8Array;
}

export interface SafetensorsContents {
  /** In file-header order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  readonly metadata: Readonly<Record<string, string>> | null;
}

/** The Rust reference rejects larger headers; so do we, before parsing megabytes of garbage. */
const MAX_HEADER_BYTES = 100_000_000;

function assertLittleEndianHost(): void {
  // Typed-array views are host-endian; every platform Node supports in practice is little-endian.
  if (os.endianness() !== 'LE') throw new AtflowError('IO', 'safetensors I/O needs a little-endian host');
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Encodes tensors (in the given order) and optional string metadata into one safetensors byte buffer. */
export function encodeSafetensors(tensors: readonly SafetensorsTensor[], metadata?: Readonly<Record<string, string>>): Buffer {
  assertLittleEndianHost();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || seen.has(t.name)) {
      throw new AtflowError('ARGUMENT', `safetensors: tensor name '${t.name}' is reserved or repeated`, { name: t.name });
    }
    seen.add(t.name);
    const expected = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new AtflowError('ARGUMENT', `safetensors: tensor '${t.name}' (${t.dtype} [${t.shape.join(', ')}]) needs ${expected} bytes, got ${t.data.byteLength}`, {
        name: t.name,
      });
    }
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

function bad(file: string, what: string, details: Record<string, unknown> = {}): AtflowError {
  return new AtflowError('DATA_FILE', `safetensors file ${file}: ${what}`, { file, ...details });
}

/** Decodes and validates a safetensors byte buffer; `file` names it in errors. Tensor data are views into `bytes`. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  assertLittleEndianHost();
  if (bytes.byteLength < 8) throw bad(file, `truncated: ${bytes.byteLength} bytes, not even the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw bad(file, `header length ${n} is implausible (> ${MAX_HEADER_BYTES}): not a safetensors file?`);
  const headerLength = Number(n);
  if (8 + headerLength > bytes.byteLength) {
    throw bad(file, `truncated: the header says ${headerLength} bytes of JSON but only ${bytes.byteLength - 8} bytes follow`);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8'));
  } catch (e) {
    throw bad(file, `header is not valid JSON (${(e as Error).message}): not a safetensors file?`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        throw bad(file, '__metadata__ must be an object of strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') throw bad(file, `tensor '${name}': entry is not an object`, { tensor: name });
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES)) {
      throw bad(file, `tensor '${name}': unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, { tensor: name });
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw bad(file, `tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`, { tensor: name });
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[0] > offs[1]) {
      throw bad(file, `tensor '${name}': data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 ≤ begin ≤ end`, { tensor: name });
    }
    const dtype = info.dtype as SafetensorsDtype;
    const expected = elementCount(shape) * DTYPE_BYTES[dtype];
    if (offs[1] - offs[0] !== expected) {
      throw bad(file, `tensor '${name}': ${dtype} [${shape.join(', ')}] needs ${expected} bytes but data_offsets span ${offs[1] - offs[0]}`, { tensor: name });
    }
    if (offs[1] > dataLength) {
      throw bad(file, `truncated: tensor '${name}' ends at data byte ${offs[1]} but the file holds only ${dataLength} data bytes`, { tensor: name });
    }
    entries.push({ name, dtype, shape, begin: offs[0], end: offs[1] });
  }
  // The tensors must tile the data region exactly, as the reference loader requires.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) {
      throw bad(file, `tensor '${e.name}' starts at data byte ${e.begin}, expected ${cursor} (overlapping or missing bytes)`, { tensor: e.name });
    }
    cursor = e.end;
  }
  if (cursor !== dataLength) throw bad(file, `${dataLength - cursor} bytes after the last tensor: corrupt, or not a safetensors file`);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    // A plain Uint8Array view (a Buffer's slice() would not copy).
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Writes durably and atomically (core/durable-file.ts: temp file, fsync, rename, fsync of the folder). */
export function writeSafetensorsFile(file: string, tensors: readonly SafetensorsTensor[], metadata?: Readonly<Record<string, string>>): void {
  writeFileDurable(path.resolve(file), encodeSafetensors(tensors, metadata), { mkdir: true });
}

export function readSafetensorsFile(file: string): SafetensorsContents {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new AtflowError('IO', `cannot read safetensors file ${file}: ${(e as Error).message}`, { file });
  }
  return decodeSafetensors(bytes, file);
}
