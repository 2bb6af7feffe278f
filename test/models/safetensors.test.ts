import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { decodeSafetensors, encodeSafetensors, readSafetensorsFile, writeSafetensorsFile } from '../../src/models/safetensors';

/** The expected bytes, written out by hand from the format's definition (not produced by our encoder). */
function handMadeFile(): Uint8Array {
  const json =
    '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}';
  expect(json.length).toBe(138); // 138 bytes of JSON, padded with 6 spaces to 144 = 18·8
  const header = Buffer.from(json + '      ', 'ascii');
  return Uint8Array.from([
    0x90, 0, 0, 0, 0, 0, 0, 0, // N = 144, u64 little-endian
    ...header,
    0x00, 0x00, 0x80, 0x3f, // 1.0f
    0x00, 0x00, 0x00, 0xc0, // -2.0f
    0x03, 0, 0, 0, 0, 0, 0, 0, // 3 as int64
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
    writeSafetensorsFile(file, [{ name: 'a', dtype: 'F32', shape: [2], data: f32([1, -2]) }, { name: 'n', dtype: 'I64', shape: [], data: i64([3n]) }], {
      format: 'pt',
    });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['w.safetensors']);
    expect(Array.from(fs.readFileSync(file))).toEqual(Array.from(handMadeFile()));
    expect(readSafetensorsFile(file).tensors.size).toBe(2);
    fs.rmSync(dir, { recursive: true });
  });

  const broken: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', (b) => b.subarray(0, 5), /bad\.st: truncated: 5 bytes/],
    ['a header cut short', (b) => b.subarray(0, 100), /bad\.st: truncated: the header says 144 bytes/],
    ['data cut short', (b) => b.subarray(0, b.length - 3), /bad\.st: truncated: tensor 'n' ends at data byte 16 but the file holds only 13/],
    ['trailing bytes', (b) => Uint8Array.from([...b, 0, 0, 0, 0]), /4 bytes after the last tensor/],
    ['a header that is not JSON', (b) => { const c = Uint8Array.from(b); c[8] = 0x41; return c; }, /header is not valid JSON/],
    ['an absurd header length', (b) => { const c = Uint8Array.from(b); c[6] = 0xff; return c; }, /header length .* is implausible/],
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
    expect(() => decodeSafetensors(make({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), 'x.st')).toThrow(/'a': F32 \[3\] needs 12 bytes but data_offsets span 8/);
    expect(() => decodeSafetensors(make({ a: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, 1), 'x.st')).toThrow(/'a': unsupported dtype "Q8"/);
    expect(() =>
      decodeSafetensors(
        make({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, 6),
        'x.st',
      ),
    ).toThrow(/tensor 'b' starts at data byte 2, expected 4/);
  });
});
