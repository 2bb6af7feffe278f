import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { createSource } from '../../src/config/builtins';
import { readMatV5 } from '../../src/data/mat-v5';
import { readSvhnMat } from '../../src/data/svhn';
import { matFile, patternMismatch, svhnVars, tempDir } from './helpers/official-files';

function errorOf(f: () => unknown): AtflowError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return e as AtflowError;
  }
  throw new Error('expected an AtflowError');
}

const FIXTURES = path.join(__dirname, 'fixtures');

describe('MAT v5 reader / SVHN', () => {
  it.each([
    ['compressed, y double stored as uint8 (MATLAB -v7)', { compress: true }, 'uint8'],
    ['compressed, y stored as double', { compress: true }, 'double'],
    ['uncompressed (-v6)', { compress: false }, 'double'],
    ['big-endian, uncompressed', { compress: false, bigEndian: true }, 'double'],
    ['big-endian, compressed', { compress: true, bigEndian: true }, 'uint8'],
  ] as const)('reads X (column-major → HWC) and y (10 → 0): %s', (_name, opts, yStorage) => {
    const file = path.join(tempDir(), 'train_32x32.mat');
    fs.writeFileSync(file, matFile(svhnVars([10, 1, 7, 3, 10], yStorage), opts));
    const s = readSvhnMat(file);
    expect(s.size).toBe(5);
    expect(Array.from(s.labels)).toEqual([0, 1, 7, 3, 0]);
    for (let i = 0; i < 5; i++) expect(patternMismatch(s.images, i, 32, 32, 3)).toBeNull();
  });

  it.each(['svhn_scipy_compressed.mat', 'svhn_scipy_plain.mat'])('reads a file written by scipy.io.savemat: %s', (name) => {
    // fixture: X[r, c, ch, n] = (7r + 3c + 50ch + 11n) mod 256, y = [10, 1, 7]
    const s = readSvhnMat(path.join(FIXTURES, name));
    expect(Array.from(s.labels)).toEqual([0, 1, 7]);
    for (let n = 0; n < 3; n++)
      for (let r = 0; r < 32; r++)
        for (let c = 0; c < 32; c++)
          for (let ch = 0; ch < 3; ch++) {
            const v = s.images[n * 3072 + (r * 32 + c) * 3 + ch];
            if (v !== (7 * r + 3 * c + 50 * ch + 11 * n) % 256) throw new Error(`(${n}, ${r}, ${c}, ${ch}) = ${v}`);
          }
    const vars = readMatV5(new Uint8Array(fs.readFileSync(path.join(FIXTURES, name))), name);
    expect(vars.get('X')!.dims).toEqual([32, 32, 3, 3]);
    expect(vars.get('y')!.dims).toEqual([3, 1]);
  });

  it('makes a source from a folder with train_32x32.mat and test_32x32.mat', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'train_32x32.mat'), matFile(svhnVars([1, 2, 3, 4], 'uint8'), { compress: true }));
    fs.writeFileSync(path.join(dir, 'test_32x32.mat'), matFile(svhnVars([10, 9], 'double'), { compress: false }));
    const src = createSource('svhn', { dir });
    expect(src.info).toMatchObject({
      name: 'svhn',
      numClasses: 10,
      imageShape: [32, 32, 3],
      sizes: { train: 4, test: 2 },
      defaultAugment: false,
    });
    expect(Array.from(src.split('test').labels)).toEqual([0, 9]);
  });

  it('rejects truncated, foreign, v7.3 and incomplete files, naming the file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'train_32x32.mat');
    const plain = matFile(svhnVars([1, 2], 'double'), { compress: false });
    fs.writeFileSync(file, plain.subarray(0, plain.length - 100));
    expect(errorOf(() => readSvhnMat(file)).message).toMatch(
      /train_32x32.mat: truncated MAT-file: data element at byte \d+ declares \d+ bytes but only \d+ remain/,
    );

    const packed = matFile(svhnVars([1, 2], 'double'), { compress: true });
    fs.writeFileSync(file, packed.subarray(0, packed.length - 20));
    expect(errorOf(() => readSvhnMat(file)).message).toMatch(/train_32x32.mat: truncated MAT-file/);

    const broken = Buffer.from(packed);
    broken.fill(0xab, 200, 260); // corrupt the zlib stream of X
    fs.writeFileSync(file, broken);
    expect(errorOf(() => readSvhnMat(file)).message).toMatch(/train_32x32.mat: MAT-file compressed element at byte 128 is corrupt/);

    fs.writeFileSync(file, Buffer.from('not a mat file at all'.padEnd(200, ' ')));
    expect(errorOf(() => readSvhnMat(file)).message).toContain(
      "not a MATLAB 5.0 MAT-file: expected a 128-byte header starting 'MATLAB 5.0 MAT-file'",
    );

    fs.writeFileSync(file, Buffer.from('MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .'.padEnd(512, ' ')));
    expect(errorOf(() => readSvhnMat(file)).message).toContain('MATLAB v7.3 (HDF5)');

    fs.writeFileSync(file, matFile([svhnVars([1], 'double')[1]], { compress: true }));
    expect(errorOf(() => readSvhnMat(file)).message).toContain("expected variables 'X' and 'y' (SVHN format 2); found y");

    fs.writeFileSync(file, matFile(svhnVars([1, 11], 'double'), { compress: false }));
    expect(errorOf(() => readSvhnMat(file)).message).toContain('y(2) = 11; expected an integer label 1..10');

    const wrongY = svhnVars([1, 2, 3], 'double');
    wrongY[1] = { ...wrongY[1], dims: [2, 1], values: [1, 2] };
    fs.writeFileSync(file, matFile(wrongY, { compress: false }));
    expect(errorOf(() => readSvhnMat(file)).message).toContain('y has 2 labels but X has 3 images');
  });

  it('names the folder and both file names when missing', () => {
    const dir = tempDir();
    const e = errorOf(() => createSource('svhn', { dir }));
    expect(e.message).toContain(dir);
    expect(e.message).toContain('train_32x32.mat, test_32x32.mat');
  });
});
