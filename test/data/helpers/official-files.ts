/**
 * Writers of the official dataset file formats, byte for byte as documented by their authors, so the
 * readers can be tested on files we cannot download here. Independent of src/data: these follow
 * the format descriptions (LeCun's IDX page, the CIFAR page, MathWorks' matfile_format.pdf).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

export function tempDir(prefix = 'atflow-src-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The test pattern: pixel (n, row, col, channel) of example n. */
export function pixel(n: number, row: number, col: number, ch: number): number {
  return (n * 31 + row * 7 + col * 3 + ch * 50) % 256;
}

/** IDX: 0, 0, 0x08 (ubyte), ndims, big-endian dims, data. */
export function idxFile(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

export function idxImages(n: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out[(i * h + r) * w + c] = pixel(i, r, c, 0);
  return out;
}

/** CIFAR binary records: label bytes, then R plane, G plane, B plane (row-major 32×32 each). */
export function cifarFile(labels: number[][], firstExample = 0): Buffer {
  const recs: Buffer[] = [];
  labels.forEach((lab, i) => {
    const rec = Buffer.alloc(lab.length + 3072);
    lab.forEach((b, j) => (rec[j] = b));
    for (let ch = 0; ch < 3; ch++)
      for (let r = 0; r < 32; r++)
        for (let c = 0; c < 32; c++) rec[lab.length + ch * 1024 + r * 32 + c] = pixel(firstExample + i, r, c, ch);
    recs.push(rec);
  });
  return Buffer.concat(recs);
}

// ---- MATLAB 5.0 MAT-file ----
const mi = { INT8: 1, UINT8: 2, INT32: 5, UINT32: 6, DOUBLE: 9, MATRIX: 14, COMPRESSED: 15 } as const;
const mxClass = { double: 6, uint8: 9 } as const;

export interface MatVar {
  name: string;
  className: keyof typeof mxClass;
  dims: number[];
  /** values in MATLAB column-major order */
  values: ArrayLike<number>;
  /** how the real part is stored on disk (MATLAB stores small-integer doubles as miUINT8) */
  storage: 'uint8' | 'double';
}

function pad8(b: Buffer): Buffer {
  const extra = (8 - (b.length % 8)) % 8;
  return extra ? Buffer.concat([b, Buffer.alloc(extra)]) : b;
}

function u32(v: number, be: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (be) b.writeUInt32BE(v);
  else b.writeUInt32LE(v);
  return b;
}

function element(type: number, data: Buffer, be: boolean, allowSmall = false): Buffer {
  if (allowSmall && data.length <= 4) {
    // small data element: (bytes << 16) | type as one uint32, then the data in 4 bytes
    return Buffer.concat([u32((data.length << 16) | type, be), data, Buffer.alloc(4 - data.length)]);
  }
  return Buffer.concat([u32(type, be), u32(data.length, be), pad8(data)]);
}

function matrixElement(v: MatVar, be: boolean): Buffer {
  const flags = Buffer.concat([u32(mxClass[v.className], be), u32(0, be)]);
  const dims = Buffer.concat(v.dims.map((d) => u32(d, be)));
  let real: Buffer;
  if (v.storage === 'uint8') real = element(mi.UINT8, Buffer.from(Uint8Array.from(v.values)), be);
  else {
    const b = Buffer.alloc(8 * v.values.length);
    for (let i = 0; i < v.values.length; i++) {
      if (be) b.writeDoubleBE(v.values[i], 8 * i);
      else b.writeDoubleLE(v.values[i], 8 * i);
    }
    real = element(mi.DOUBLE, b, be);
  }
  const body = Buffer.concat([
    element(mi.UINT32, flags, be),
    element(mi.INT32, dims, be),
    element(mi.INT8, Buffer.from(v.name, 'latin1'), be, true),
    real,
  ]);
  return element(mi.MATRIX, body, be);
}

export function matFile(vars: MatVar[], opts: { compress: boolean; bigEndian?: boolean }): Buffer {
  const be = opts.bigEndian ?? false;
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024', 0, 'latin1');
  header.fill(0, 116, 124);
  if (be) header.writeUInt16BE(0x0100, 124);
  else header.writeUInt16LE(0x0100, 124);
  // endian indicator: the characters 'MI' written as a 16-bit value, so a little-endian file reads 'IM'
  header.write(be ? 'MI' : 'IM', 126, 'latin1');
  const parts = vars.map((v) => {
    const m = matrixElement(v, be);
    if (!opts.compress) return m;
    const z = zlib.deflateSync(m);
    return Buffer.concat([u32(mi.COMPRESSED, be), u32(z.length, be), z]);
  });
  return Buffer.concat([header, ...parts]);
}

/** SVHN's X (32×32×3×N uint8, column-major) and y (N×1, 1..10) in the test pattern. */
export function svhnVars(labels: number[], yStorage: 'uint8' | 'double'): MatVar[] {
  const n = labels.length;
  const x = new Uint8Array(32 * 32 * 3 * n);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < 3; ch++)
      for (let c = 0; c < 32; c++) for (let r = 0; r < 32; r++) x[r + 32 * c + 1024 * ch + 3072 * i] = pixel(i, r, c, ch);
  return [
    { name: 'X', className: 'uint8', dims: [32, 32, 3, n], values: x, storage: 'uint8' },
    { name: 'y', className: 'double', dims: [n, 1], values: labels, storage: yStorage },
  ];
}

/** Expects storage (HWC) of example n to hold the test pattern. Returns the first mismatch or null. */
export function patternMismatch(images: Uint8Array, n: number, h: number, w: number, c: number, patternExample = n): string | null {
  const per = h * w * c;
  for (let r = 0; r < h; r++)
    for (let col = 0; col < w; col++)
      for (let ch = 0; ch < c; ch++) {
        const got = images[n * per + (r * w + col) * c + ch];
        const want = pixel(patternExample, r, col, ch);
        if (got !== want) return `example ${n} (${r}, ${col}, ${ch}): got ${got}, want ${want}`;
      }
  return null;
}
