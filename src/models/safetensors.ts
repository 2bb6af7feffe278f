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

/** The float dtypes a tensor can be widened or rounded to F32 from. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64'];

/** An aligned copy of a tensor's bytes (views into a file buffer need not be aligned for their dtype). */
function alignedCopy(data: Uint8Array): ArrayBuffer {
  return new Uint8Array(data).buffer;
}

/**
 * A float tensor's values as float32: F32 as stored; F16 (IEEE binary16, subnormals, ±∞ and NaN
 * included) and BF16 (the upper half of a binary32) widened exactly; F64 rounded to nearest, as
 * PyTorch's `.float()` does.
 */
export function float32Values(t: SafetensorsTensor): Float32Array {
  const buffer = alignedCopy(t.data);
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(buffer));
    case 'BF16': {
      const half = new Uint16Array(buffer);
      const bits = new Uint32Array(half.length);
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F16': {
      const half = new Uint16Array(buffer);
      const out = new Float32Array(half.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < half.length; i++) {
        const h = half[i];
        const sign = (h & 0x8000) << 16;
        const exponent = (h >> 10) & 0x1f;
        const mantissa = h & 0x3ff;
        if (exponent === 0)
          out[i] = (sign ? -1 : 1) * mantissa * 2 ** -24; // zero and subnormals: exact in binary32
        else if (exponent === 31)
          bits[i] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // ±∞, NaN
        else bits[i] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0; // rebias 15 → 127
      }
      return out;
    }
    default:
      throw new AtflowError('ARGUMENT', `tensor '${t.name}' is ${t.dtype}, not a float dtype (${FLOAT_DTYPES.join(', ')})`, {
        tensor: t.name,
      });
  }
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
      throw new AtflowError(
        'ARGUMENT',
        `safetensors: tensor '${t.name}' (${t.dtype} [${t.shape.join(', ')}]) needs ${expected} bytes, got ${t.data.byteLength}`,
        {
          name: t.name,
        },
      );
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

/** One tensor of a header: where its bytes lie in the data region (offsets relative to its start). */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** In file-header order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Byte offset of the data region in the file (8 + header length). */
  readonly dataStart: number;
}

/**
 * What a file that is not safetensors is, from its first bytes, when it is one of the formats a
 * PyTorch user is likely to hand us; with how to convert it. Null when unrecognised.
 */
function foreignFormat(first: Uint8Array, file: string): string | null {
  const stem = path.basename(file).replace(/\.[^.]*$/, '');
  const convert =
    `; atflow reads safetensors only (it never unpickles: a pickle can run code). Convert it once in Python: ` +
    `import torch; from safetensors.torch import save_file; sd = torch.load('${file}', map_location='cpu'); ` +
    `save_file({k: v.contiguous() for k, v in sd.get('state_dict', sd).items()}, '${stem}.safetensors') ` +
    `(with the model at hand: save_file(model.state_dict(), '${stem}.safetensors')); see docs/models.md`;
  if (first[0] === 0x50 && first[1] === 0x4b && first[2] === 0x03 && first[3] === 0x04) {
    return `a ZIP archive, which is what torch.save writes (a PyTorch .pt / .pth / .tar checkpoint), not a safetensors file${convert}`;
  }
  if (first[0] === 0x80 && first[1] >= 2 && first[1] <= 5) {
    return (
      `a Python pickle (protocol ${first[1]}), which is what torch.save ` +
      `wrote before PyTorch 1.6 or with ` +
      `_use_new_zipfile_serialization=False, not a safetensors file${convert}`
    );
  }
  if (first[0] === 0x89 && first[1] === 0x48 && first[2] === 0x44 && first[3] === 0x46)
    return 'an HDF5 file (a Keras .h5 model?), not a safetensors file';
  if (first[0] === 0x93 && Buffer.from(first.subarray(1, 6)).toString('latin1') === 'NUMPY')
    return 'a NumPy .npy array, not a safetensors file';
  return null;
}

/** The header length N from the first 8 bytes of a file of `total` bytes, checked against the file size. */
function headerLengthOf(first: Uint8Array, total: number, file: string): number {
  if (total < 8) {
    const foreign = total >= 4 ? foreignFormat(first, file) : null;
    throw bad(file, foreign ?? `truncated: ${total} bytes, not even the 8-byte header length`);
  }
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES) || 8n + n > BigInt(total)) {
    const foreign = foreignFormat(first, file);
    if (foreign) throw bad(file, foreign);
    if (n > BigInt(MAX_HEADER_BYTES)) throw bad(file, `header length ${n} is implausible (> ${MAX_HEADER_BYTES}): not a safetensors file?`);
    throw bad(file, `truncated: the header says ${n} bytes of JSON but only ${total - 8} bytes follow`);
  }
  return Number(n);
}

/**
 * Parses and validates the JSON header against the size of the data region: every dtype, shape and
 * offset, and that the tensors tile the region exactly (no gaps, no overlap, nothing after the last), as
 * the reference loader requires. Nothing of the data region is needed for that.
 */
function parseHeader(json: Uint8Array, dataLength: number, file: string): Omit<SafetensorsHeader, 'dataStart'> {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'));
  } catch (e) {
    throw bad(file, `header is not valid JSON (${(e as Error).message}): not a safetensors file?`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsTensorInfo>();
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
    if (typeof info.dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, info.dtype)) {
      throw bad(
        file,
        `tensor '${name}': unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`,
        { tensor: name },
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(file, `tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`, { tensor: name });
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1]) {
      throw bad(file, `tensor '${name}': data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 ≤ begin ≤ end`, { tensor: name });
    }
    const dtype = info.dtype as SafetensorsDtype;
    const expected = elementCount(shape) * DTYPE_BYTES[dtype];
    if (offs[1] - offs[0] !== expected) {
      throw bad(
        file,
        `tensor '${name}': ${dtype} [${shape.join(', ')}] needs ${expected} bytes but data_offsets span ${offs[1] - offs[0]}`,
        { tensor: name },
      );
    }
    if (offs[1] > dataLength) {
      throw bad(file, `truncated: tensor '${name}' ends at data byte ${offs[1]} but the file holds only ${dataLength} data bytes`, {
        tensor: name,
      });
    }
    tensors.set(name, { name, dtype, shape, begin: offs[0], end: offs[1] });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) {
      throw bad(file, `tensor '${e.name}' starts at data byte ${e.begin}, expected ${cursor} (overlapping or missing bytes)`, {
        tensor: e.name,
      });
    }
    cursor = e.end;
  }
  if (cursor !== dataLength) throw bad(file, `${dataLength - cursor} bytes after the last tensor: corrupt, or not a safetensors file`);
  return { tensors, metadata };
}

/** Decodes and validates a safetensors byte buffer; `file` names it in errors. Tensor data are views into `bytes`. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  assertLittleEndianHost();
  const headerLength = headerLengthOf(bytes.subarray(0, 8), bytes.byteLength, file);
  const dataStart = 8 + headerLength;
  const { tensors: infos, metadata } = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, file);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of infos.values()) {
    // A plain Uint8Array view (a Buffer's slice() would not copy).
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Writes durably and atomically (core/durable-file.ts: temp file, fsync, rename, fsync of the folder). */
export function writeSafetensorsFile(
  file: string,
  tensors: readonly SafetensorsTensor[],
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileDurable(path.resolve(file), encodeSafetensors(tensors, metadata), { mkdir: true });
}

/** An open safetensors file whose header has been read and checked against the file's size; no tensor is read yet. */
export interface SafetensorsReader {
  readonly file: string;
  readonly header: SafetensorsHeader;
  /** Reads the named tensors (each into its own buffer); every name must be in the header. */
  read(names: Iterable<string>): Map<string, SafetensorsTensor>;
  close(): void;
}

function ioError(file: string, e: unknown): AtflowError {
  return new AtflowError('IO', `cannot read safetensors file ${file}: ${(e as Error).message}`, { file });
}

/** Fills `into` from `position`; a file that ends early (it shrank since it was opened) is a named error. */
function readFully(fd: number, into: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < into.byteLength) {
    let got: number;
    try {
      got = fs.readSync(fd, into, done, into.byteLength - done, position + done);
    } catch (e) {
      throw ioError(file, e);
    }
    if (got === 0)
      throw bad(file, `truncated while reading ${what}: the file ended at byte ${position + done} (did it change while being read?)`);
    done += got;
  }
}

/**
 * Opens a safetensors file and reads only its header: 8 bytes, then N bytes of JSON, every offset checked
 * against the file's size. A multi-gigabyte file costs no memory until tensors are read, and only the
 * tensors asked for are read (so files over 2 GiB, which Node cannot read whole, load too).
 */
export function openSafetensorsFile(file: string): SafetensorsReader {
  assertLittleEndianHost();
  let fd: number;
  try {
    // Checked before opening: opening a FIFO blocks until a writer comes, and a device never ends.
    const st = fs.statSync(file);
    if (!st.isFile())
      throw new AtflowError(
        'DATA_FILE',
        `safetensors file ${file}: not a regular file (${st.isDirectory() ? 'a directory' : 'a device, FIFO or socket'})`,
        { file },
      );
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw e instanceof AtflowError ? e : ioError(file, e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const first = new Uint8Array(Math.min(8, size));
    readFully(fd, first, 0, file, 'the header length');
    const headerLength = headerLengthOf(first, size, file);
    const json = new Uint8Array(headerLength);
    readFully(fd, json, 8, file, 'the header');
    const dataStart = 8 + headerLength;
    const header: SafetensorsHeader = { ...parseHeader(json, size - dataStart, file), dataStart };
    let open = true;
    return {
      file,
      header,
      read(names) {
        if (!open) throw new AtflowError('ARGUMENT', `safetensors file ${file} is closed`, { file });
        const out = new Map<string, SafetensorsTensor>();
        for (const name of names) {
          const e = header.tensors.get(name);
          if (!e) throw new AtflowError('ARGUMENT', `safetensors file ${file}: no tensor '${name}'`, { file, tensor: name });
          let data: Uint8Array;
          try {
            data = new Uint8Array(e.end - e.begin);
          } catch (err) {
            throw bad(file, `tensor '${name}' (${e.end - e.begin} bytes) does not fit in memory: ${(err as Error).message}`, {
              tensor: name,
            });
          }
          readFully(fd, data, dataStart + e.begin, file, `tensor '${name}'`);
          out.set(name, { name, dtype: e.dtype, shape: e.shape, data });
        }
        return out;
      },
      close() {
        if (open) fs.closeSync(fd);
        open = false;
      },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** The header alone (names, dtypes, shapes, metadata): reads 8 + N bytes however large the file is. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const reader = openSafetensorsFile(file);
  reader.close();
  return reader.header;
}

/** Reads a safetensors file: every tensor, or only those named in `names`. */
export function readSafetensorsFile(file: string, names?: Iterable<string>): SafetensorsContents {
  const reader = openSafetensorsFile(file);
  try {
    return { tensors: reader.read(names ?? reader.header.tensors.keys()), metadata: reader.header.metadata };
  } finally {
    reader.close();
  }
}
