import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import {
  decodeSafetensors,
  encodeSafetensors,
  float32Values,
  readSafetensorsFile,
  readSafetensorsHeader,
  writeSafetensorsFile,
} from '../../src/models/safetensors';

/** The expected bytes, written out by hand from the format's definition (not produced by our encoder). */
function handMadeFile(): Uint8Array {
  const json =
    '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}';
  expect(json.length).toBe(138); // 138 bytes of JSON, padded with 6 spaces to 144 = 18·8
  const header = Buffer.from(json + '      ', 'ascii');
  return Uint8Array.from([
    0x90,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // N = 144, u64 little-endian
    ...header,
    0x00,
    0x00,
    0x80,
    0x3f, // 1.0f
    0x00,
    0x00,
    0x00,
    0xc0, // -2.0f
    0x03,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // 3 as int64
  ]);
}

const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
const i64 = (xs: bigint[]) => new Uint8Array(BigInt64Array.from(xs).buffer);

describe('safetensors format', () => {
  it('encodes a tiny file byte for byte as the format defines it', () => {
    const bytes = encodeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2], data: f32([1, -2]) },
        { name: 'n', dtype: 'I64', shape: [], data: i64([3n]) },
      ],
      { format: 'pt' },
    );
    const expected = handMadeFile();
    expect(bytes.length).toBe(168);
    expect(Array.from(bytes)).toEqual(Array.from(expected));
  });

  it('decodes the hand-made file: names, dtypes, shapes, values, metadata', () => {
    const { tensors, metadata } = decodeSafetensors(handMadeFile(), 'hand.safetensors');
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['a', 'n']);
    const a = tensors.get('a')!;
    expect(a.dtype).toBe('F32');
    expect(a.shape).toEqual([2]);
    expect(Array.from(new Float32Array(new Uint8Array(a.data).buffer))).toEqual([1, -2]);
    const n = tensors.get('n')!;
    expect(n.shape).toEqual([]);
    expect(new BigInt64Array(new Uint8Array(n.data).buffer)[0]).toBe(3n);
  });

  it('writes atomically (no temp file left) and reads back', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-st-'));
    const file = path.join(dir, 'sub', 'w.safetensors');
    writeSafetensorsFile(
      file,
      [
        { name: 'a', dtype: 'F32', shape: [2], data: f32([1, -2]) },
        { name: 'n', dtype: 'I64', shape: [], data: i64([3n]) },
      ],
      {
        format: 'pt',
      },
    );
    expect(fs.readdirSync(path.dirname(file))).toEqual(['w.safetensors']);
    expect(Array.from(fs.readFileSync(file))).toEqual(Array.from(handMadeFile()));
    expect(readSafetensorsFile(file).tensors.size).toBe(2);
    fs.rmSync(dir, { recursive: true });
  });

  const broken: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', (b) => b.subarray(0, 5), /bad\.st: truncated: 5 bytes/],
    ['a header cut short', (b) => b.subarray(0, 100), /bad\.st: truncated: the header says 144 bytes/],
    [
      'data cut short',
      (b) => b.subarray(0, b.length - 3),
      /bad\.st: truncated: tensor 'n' ends at data byte 16 but the file holds only 13/,
    ],
    ['trailing bytes', (b) => Uint8Array.from([...b, 0, 0, 0, 0]), /4 bytes after the last tensor/],
    [
      'a header that is not JSON',
      (b) => {
        const c = Uint8Array.from(b);
        c[8] = 0x41;
        return c;
      },
      /header is not valid JSON/,
    ],
    [
      'an absurd header length',
      (b) => {
        const c = Uint8Array.from(b);
        c[6] = 0xff;
        return c;
      },
      /header length .* is implausible/,
    ],
  ];
  it.each(broken)('rejects %s with an error naming the file', (_what, mutate, message) => {
    let caught: unknown;
    try {
      decodeSafetensors(mutate(handMadeFile()), 'bad.st');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AtflowError);
    expect((caught as AtflowError).code).toBe('DATA_FILE');
    expect((caught as Error).message).toMatch(message);
  });

  it('rejects a dtype/shape/offset disagreement and overlapping tensors', () => {
    const make = (entries: Record<string, unknown>, dataBytes: number) => {
      let json = JSON.stringify(entries);
      json += ' '.repeat((8 - (json.length % 8)) % 8);
      const out = Buffer.alloc(8 + json.length + dataBytes);
      out.writeBigUInt64LE(BigInt(json.length), 0);
      out.write(json, 8, 'ascii');
      return out;
    };
    expect(() => decodeSafetensors(make({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), 'x.st')).toThrow(
      /'a': F32 \[3\] needs 12 bytes but data_offsets span 8/,
    );
    expect(() => decodeSafetensors(make({ a: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, 1), 'x.st')).toThrow(
      /'a': unsupported dtype "Q8"/,
    );
    expect(() =>
      decodeSafetensors(
        make({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, 6),
        'x.st',
      ),
    ).toThrow(/tensor 'b' starts at data byte 2, expected 4/);
  });
});

describe('safetensors: F16, BF16 and F64 become F32 (hand-made bytes)', () => {
  const u16 = (xs: number[]) => new Uint8Array(Uint16Array.from(xs).buffer);
  it('F16: normals, subnormals, ±0, ±∞, NaN and the largest half, exactly', () => {
    // binary16: sign, 5 exponent bits (bias 15), 10 mantissa bits
    const bits = [0x3c00, 0xc000, 0x3555, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x7e00];
    // 0x3555: exponent 13, mantissa 0x155
    const expected = [1, -2, (1 + 0x155 / 1024) * 2 ** (13 - 15), 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, -0, Infinity, -Infinity, NaN];
    const got = Array.from(float32Values({ name: 'h', dtype: 'F16', shape: [bits.length], data: u16(bits) }));
    expect(got).toEqual(expected);
    expect(Object.is(got[7], -0)).toBe(true);
  });
  it('BF16: the upper 16 bits of a binary32, including a binary32 subnormal', () => {
    const got = Array.from(float32Values({ name: 'b', dtype: 'BF16', shape: [5], data: u16([0x3f80, 0xc000, 0x4049, 0x0001, 0xff80]) }));
    expect(got).toEqual([1, -2, Math.fround(3.140625), 2 ** -133, -Infinity]);
  });
  it('F64: rounded to the nearest float32 (as torch .float()), overflow to ∞; an unaligned view is fine', () => {
    const values = [1 / 3, -0.1, 1e300, 2 ** -149 * 0.75];
    const bytes = new Uint8Array(1 + 8 * values.length);
    bytes.set(new Uint8Array(Float64Array.from(values).buffer), 1);
    const got = Array.from(float32Values({ name: 'd', dtype: 'F64', shape: [4], data: bytes.subarray(1) }));
    expect(got).toEqual([Math.fround(1 / 3), Math.fround(-0.1), Infinity, 2 ** -149]);
  });
  it('an integer tensor is not a float', () => {
    expect(() => float32Values({ name: 'n', dtype: 'I64', shape: [], data: i64([1n]) })).toThrow(/tensor 'n' is I64, not a float dtype/);
  });
});

describe('safetensors: files that are not safetensors say what they are', () => {
  const cases: [string, number[], RegExp][] = [
    [
      'torch.save (ZIP)',
      [0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x08, 0, 0, 0, 0],
      /w\.pt: a ZIP archive, which is what torch\.save writes .*save_file\(model\.state_dict\(\), 'w\.safetensors'\)/,
    ],
    [
      'legacy torch.save (pickle protocol 2)',
      [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8],
      /w\.pt: a Python pickle \(protocol 2\), which is what torch\.save wrote before PyTorch 1\.6.*it never unpickles/,
    ],
    ['Keras HDF5', [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0], /w\.pt: an HDF5 file/],
  ];
  it.each(cases)('%s', (_what, head, message) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-st-'));
    const file = path.join(dir, 'w.pt');
    fs.writeFileSync(file, Buffer.concat([Buffer.from(head), Buffer.alloc(500)]));
    expect(() => readSafetensorsFile(file)).toThrow(message);
    expect(() => decodeSafetensors(fs.readFileSync(file), file)).toThrow(message);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('safetensors: the header first, then only the tensors asked for', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-st-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The hand-made file's tensors, then a 2.2 GB U8 tensor that is a hole on disk. */
  function bigFile(): string {
    const big = 2_200_000_000;
    let json =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]},' +
      `"big":{"dtype":"U8","shape":[${big}],"data_offsets":[16,${16 + big}]}}`;
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const head = Buffer.alloc(8 + json.length);
    head.writeBigUInt64LE(BigInt(json.length), 0);
    head.write(json, 8, 'ascii');
    const file = path.join(dir, 'big.safetensors');
    fs.writeFileSync(file, Buffer.concat([head, f32([1, -2]), i64([3n])]));
    fs.truncateSync(file, head.length + 16 + big);
    return file;
  }

  it('reads a file over 2 GiB: its header, and the named tensors', () => {
    const file = bigFile();
    expect(fs.statSync(file).size).toBeGreaterThan(2 ** 31);
    const header = readSafetensorsHeader(file);
    expect([...header.tensors.keys()]).toEqual(['a', 'n', 'big']);
    expect(header.tensors.get('big')!.shape).toEqual([2_200_000_000]);
    expect(header.metadata).toEqual({ format: 'pt' });
    const { tensors } = readSafetensorsFile(file, ['n', 'a']);
    expect([...tensors.keys()]).toEqual(['n', 'a']);
    expect(Array.from(new Float32Array(tensors.get('a')!.data.buffer))).toEqual([1, -2]);
    expect(new BigInt64Array(tensors.get('n')!.data.buffer)[0]).toBe(3n);
  });

  it('checks every offset against the file size before reading any tensor', () => {
    const file = bigFile();
    fs.truncateSync(file, fs.statSync(file).size - 1);
    expect(() => readSafetensorsHeader(file)).toThrow(
      /big\.safetensors: truncated: tensor 'big' ends at data byte 2200000016 but the file holds only 2200000015 data bytes/,
    );
  });

  it('refuses a directory and a missing file by name', () => {
    expect(() => readSafetensorsFile(dir)).toThrow(/safetensors file .*: not a regular file \(a directory\)/);
    expect(() => readSafetensorsHeader(path.join(dir, 'none.safetensors'))).toThrow(
      /cannot read safetensors file .*none\.safetensors: ENOENT/,
    );
  });
});
