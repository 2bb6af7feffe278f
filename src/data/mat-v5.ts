import * as zlib from 'zlib';
import { dataFileError } from './data-files';

/**
 * A minimal reader of MATLAB 5.0 MAT-files (the format of SVHN's train_32x32.mat / test_32x32.mat and
 * of `save -v6` / `-v7` and scipy.io.savemat). It reads numeric, non-sparse, real arrays — the only kind
 * SVHN holds — and skips every other variable. Both plain (miMATRIX) and zlib-compressed (miCOMPRESSED,
 * `-v7`) elements, and both byte orders. Reference: MathWorks, "MAT-File Format" (matfile_format.pdf).
 *
 * File: 128-byte header (text, subsystem offset, version 0x0100, endian indicator 'IM' when the file is
 * little-endian), then data elements. Element tag: uint32 type + uint32 byte count, data padded to 8
 * bytes; or the "small" form (count in the upper 16 bits, type in the lower, ≤ 4 data bytes in the tag).
 * An miMATRIX holds sub-elements: array flags (class), dimensions, name, real part (any numeric type:
 * MATLAB stores a double array of small integers as miUINT8 to save space).
 */

const miINT8 = 1,
  miUINT8 = 2,
  miINT16 = 3,
  miUINT16 = 4,
  miINT32 = 5,
  miUINT32 = 6,
  miSINGLE = 7,
  miDOUBLE = 9;
const miINT64 = 12,
  miUINT64 = 13,
  miMATRIX = 14,
  miCOMPRESSED = 15;

/** MATLAB array classes (mxCLASS) that this reader returns; others (cell, struct, char, sparse, …) are skipped. */
export const MX_NUMERIC_CLASSES: Readonly<Record<number, string>> = {
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};

export interface MatArray {
  readonly name: string;
  /** 'double', 'uint8', … (MATLAB's class of the variable) */
  readonly className: string;
  /** MATLAB dimensions; data is column-major (first index fastest). */
  readonly dims: readonly number[];
  /** Values as stored: a zero-copy Uint8Array for miUINT8 data, else a Float64Array. */
  readonly data: Uint8Array | Float64Array;
}

interface Cursor {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly le: boolean;
  readonly file: string;
  /** where `bytes` starts in the file, for messages (−1 inside a decompressed element) */
  readonly base: number;
}

interface Element {
  type: number;
  /** data bytes, excluding padding */
  data: Uint8Array;
  /** position after the element (and its padding) */
  next: number;
}

function readElement(c: Cursor, pos: number): Element {
  const where = c.base >= 0 ? `at byte ${c.base + pos}` : `inside a compressed element (offset ${pos})`;
  if (pos + 8 > c.bytes.length) {
    throw dataFileError(c.file, `truncated MAT-file: data element ${where} needs an 8-byte tag, ${c.bytes.length - pos} bytes remain`);
  }
  const word0 = c.view.getUint32(pos, c.le);
  if (word0 >>> 16 !== 0) {
    // small data element: ≤ 4 bytes packed into the tag
    const n = word0 >>> 16;
    if (n > 4) throw dataFileError(c.file, `MAT-file small data element ${where} claims ${n} bytes (at most 4)`);
    return { type: word0 & 0xffff, data: c.bytes.subarray(pos + 4, pos + 4 + n), next: pos + 8 };
  }
  const n = c.view.getUint32(pos + 4, c.le);
  const start = pos + 8;
  if (start + n > c.bytes.length) {
    throw dataFileError(c.file, `truncated MAT-file: data element ${where} declares ${n} bytes but only ${c.bytes.length - start} remain`, {
      declared: n,
      remaining: c.bytes.length - start,
    });
  }
  // Compressed elements are not padded; the others are padded to a multiple of 8 bytes.
  const padded = word0 === miCOMPRESSED ? n : Math.ceil(n / 8) * 8;
  // (a writer may leave the padding off the very last element)
  const next = Math.min(start + padded, c.bytes.length);
  return { type: word0, data: c.bytes.subarray(start, start + n), next };
}

function numbers(c: Cursor, el: Element, what: string): Uint8Array | Float64Array {
  const d = el.data;
  const dv = new DataView(d.buffer, d.byteOffset, d.length);
  const size: Record<number, number> = {
    [miINT8]: 1,
    [miUINT8]: 1,
    [miINT16]: 2,
    [miUINT16]: 2,
    [miINT32]: 4,
    [miUINT32]: 4,
    [miSINGLE]: 4,
    [miDOUBLE]: 8,
    [miINT64]: 8,
    [miUINT64]: 8,
  };
  const bytesPer = size[el.type];
  if (bytesPer === undefined) throw dataFileError(c.file, `MAT-file ${what}: data type ${el.type} is not a numeric type`);
  if (d.length % bytesPer !== 0) throw dataFileError(c.file, `MAT-file ${what}: ${d.length} bytes is not a multiple of ${bytesPer}`);
  if (el.type === miUINT8) return d;
  const n = d.length / bytesPer;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * bytesPer;
    switch (el.type) {
      case miINT8:
        out[i] = dv.getInt8(o);
        break;
      case miINT16:
        out[i] = dv.getInt16(o, c.le);
        break;
      case miUINT16:
        out[i] = dv.getUint16(o, c.le);
        break;
      case miINT32:
        out[i] = dv.getInt32(o, c.le);
        break;
      case miUINT32:
        out[i] = dv.getUint32(o, c.le);
        break;
      case miSINGLE:
        out[i] = dv.getFloat32(o, c.le);
        break;
      case miDOUBLE:
        out[i] = dv.getFloat64(o, c.le);
        break;
      case miINT64:
        out[i] = Number(dv.getBigInt64(o, c.le));
        break;
      case miUINT64:
        out[i] = Number(dv.getBigUint64(o, c.le));
        break;
    }
  }
  return out;
}

function parseMatrix(c: Cursor, el: Element): MatArray | undefined {
  if (el.data.length === 0) return undefined; // empty array
  const sub: Cursor = { ...c, bytes: el.data, view: new DataView(el.data.buffer, el.data.byteOffset, el.data.length), base: -1 };
  const flags = readElement(sub, 0);
  if (flags.type !== miUINT32 || flags.data.length < 8) throw dataFileError(c.file, 'MAT-file array without its array-flags sub-element');
  const flagWord = new DataView(flags.data.buffer, flags.data.byteOffset, 8).getUint32(0, c.le);
  const classId = flagWord & 0xff;
  const complex = (flagWord & 0x0800) !== 0;
  const className = MX_NUMERIC_CLASSES[classId];
  if (!className) return undefined; // cell, struct, char, sparse, object: not needed here
  const dimsEl = readElement(sub, flags.next);
  const dimsData = numbers(sub, dimsEl, 'dimensions');
  const dims = Array.from(dimsData);
  const nameEl = readElement(sub, dimsEl.next);
  const name = Buffer.from(nameEl.data).toString('latin1');
  if (complex) throw dataFileError(c.file, `MAT-file variable '${name}' is complex; expected a real array`);
  const realEl = readElement(sub, nameEl.next);
  const data = numbers(sub, realEl, `variable '${name}'`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw dataFileError(c.file, `MAT-file variable '${name}' has ${data.length} values but its dimensions ${dims.join('x')} need ${count}`);
  }
  return { name, className, dims, data };
}

/** Every numeric array of a MAT v5 file, by name. A truncated or foreign file is a DATA_FILE error naming it. */
export function readMatV5(bytes: Uint8Array, file: string): Map<string, MatArray> {
  const text = Buffer.from(bytes.subarray(0, Math.min(116, bytes.length))).toString('latin1');
  if (text.startsWith('MATLAB 7.3')) {
    throw dataFileError(file, 'is a MATLAB v7.3 (HDF5) file; expected MATLAB 5.0 format (save with -v7 or -v6)');
  }
  if (bytes.length < 128 || !text.startsWith('MATLAB 5.0')) {
    throw dataFileError(file, `not a MATLAB 5.0 MAT-file: expected a 128-byte header starting 'MATLAB 5.0 MAT-file'`);
  }
  const indicator = String.fromCharCode(bytes[126], bytes[127]);
  if (indicator !== 'IM' && indicator !== 'MI') {
    throw dataFileError(file, `MAT-file endian indicator '${indicator}'; expected 'IM' or 'MI'`);
  }
  const le = indicator === 'IM';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Map<string, MatArray>();
  const top: Cursor = { bytes, view, le, file, base: 0 };
  let pos = 128;
  while (pos < bytes.length) {
    const el = readElement(top, pos);
    if (el.type === miCOMPRESSED) {
      let inflated: Buffer;
      try {
        inflated = zlib.inflateSync(el.data);
      } catch (e: any) {
        throw dataFileError(file, `MAT-file compressed element at byte ${pos} is corrupt or truncated (${e?.message ?? e})`);
      }
      const inner: Cursor = {
        bytes: inflated,
        view: new DataView(inflated.buffer, inflated.byteOffset, inflated.length),
        le,
        file,
        base: -1,
      };
      const innerEl = readElement(inner, 0);
      const arr = innerEl.type === miMATRIX ? parseMatrix(inner, innerEl) : undefined;
      if (arr) out.set(arr.name, arr);
    } else if (el.type === miMATRIX) {
      const arr = parseMatrix(top, el);
      if (arr) out.set(arr.name, arr);
    }
    pos = el.next;
  }
  return out;
}
