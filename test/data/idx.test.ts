import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { AtflowError } from '../../src/core/errors';
import { readDataFile } from '../../src/data/data-files';
import { createIdxSource, parseIdx } from '../../src/data/idx';
import { idxFile, idxImages, patternMismatch, tempDir } from './helpers/official-files';

function writeSet(dir: string, gz: boolean, sizes = { train: 5, test: 3 }, h = 4, w = 6): void {
  const put = (name: string, buf: Buffer) => fs.writeFileSync(path.join(dir, gz ? `${name}.gz` : name), gz ? zlib.gzipSync(buf) : buf);
  put('train-images-idx3-ubyte', idxFile([sizes.train, h, w], idxImages(sizes.train, h, w)));
  put(
    'train-labels-idx1-ubyte',
    idxFile(
      [sizes.train],
      Uint8Array.from({ length: sizes.train }, (_, i) => (3 * i + 1) % 10),
    ),
  );
  put('t10k-images-idx3-ubyte', idxFile([sizes.test, h, w], idxImages(sizes.test, h, w)));
  put(
    't10k-labels-idx1-ubyte',
    idxFile(
      [sizes.test],
      Uint8Array.from({ length: sizes.test }, (_, i) => (7 * i) % 10),
    ),
  );
}

function errorOf(f: () => unknown): AtflowError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return e as AtflowError;
  }
  throw new Error('expected an AtflowError');
}

describe('IDX reader', () => {
  it.each([false, true])('round-trips pixels and labels exactly (gzip %s), HWC with C = 1', (gz) => {
    const dir = tempDir();
    writeSet(dir, gz);
    const src = createIdxSource({ dir });
    expect(src.info.imageShape).toEqual([4, 6, 1]);
    expect(src.info.sizes).toEqual({ train: 5, test: 3 });
    expect(src.info.defaultAugment).toBe(false);
    expect(Array.from(src.split('train').labels)).toEqual([1, 4, 7, 0, 3]);
    expect(Array.from(src.split('test').labels)).toEqual([0, 7, 4]);
    for (let i = 0; i < 5; i++) expect(patternMismatch(src.split('train').images, i, 4, 6, 1)).toBeNull();
    for (let i = 0; i < 3; i++) expect(patternMismatch(src.split('test').images, i, 4, 6, 1)).toBeNull();
  });

  it('recognises gzip by content, not by name', () => {
    const file = path.join(tempDir(), 'labels.bin');
    fs.writeFileSync(file, zlib.gzipSync(idxFile([3], Uint8Array.from([2, 0, 1]))));
    expect(Array.from(parseIdx(readDataFile(file), file, 1).data)).toEqual([2, 0, 1]);
  });

  it('names the file and the expected magic for a wrong header', () => {
    const e = errorOf(() => parseIdx(new Uint8Array(idxFile([3], new Uint8Array(3))), 'train-images-idx3-ubyte', 3));
    expect(e.message).toContain('train-images-idx3-ubyte');
    expect(e.message).toContain('magic number 0x00000801');
    expect(e.message).toContain('0x00000803');
  });

  it('reports a truncated file with its size and the size its header implies', () => {
    const full = idxFile([4, 2, 2], new Uint8Array(16));
    const e = errorOf(() => parseIdx(new Uint8Array(full.subarray(0, full.length - 3)), 'x-idx3', 3));
    expect(e.code).toBe('DATA_FILE');
    expect(e.message).toMatch(/size 29 bytes does not match its header \(dimensions 4x2x2: 32 bytes\); the file is truncated/);
    const tooLong = Buffer.concat([full, Buffer.alloc(1)]);
    expect(errorOf(() => parseIdx(new Uint8Array(tooLong), 'x-idx3', 3)).message).toContain('size 33 bytes');
  });

  it('rejects a corrupt gzip, a count mismatch and out-of-range labels, naming the file', () => {
    const dir = tempDir();
    writeSet(dir, false);
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxFile([2], Uint8Array.from([1, 2])));
    expect(errorOf(() => createIdxSource({ dir })).message).toMatch(
      /t10k-labels-idx1-ubyte has 2 labels but t10k-images-idx3-ubyte has 3 images/,
    );

    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxFile([3], Uint8Array.from([1, 12, 2])));
    expect(errorOf(() => createIdxSource({ dir })).message).toMatch(/t10k-labels-idx1-ubyte: label 12 at index 1; expected 0..9/);
    expect(createIdxSource({ dir, numClasses: 13 }).info.numClasses).toBe(13);

    const gz = zlib.gzipSync(idxFile([3], Uint8Array.from([1, 2, 3])));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), gz.subarray(0, gz.length - 6));
    expect(errorOf(() => createIdxSource({ dir })).message).toMatch(/t10k-labels-idx1-ubyte: gzip data is corrupt or truncated/);
  });

  it('names the folder and every expected file when files are missing', () => {
    const dir = tempDir();
    const e = errorOf(() => createIdxSource({ dir }));
    expect(e.code).toBe('DATA_FILE');
    expect(e.message).toContain(dir);
    for (const f of ['train-images-idx3-ubyte.gz or train-images-idx3-ubyte', 't10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte']) {
      expect(e.message).toContain(f);
    }
    expect(errorOf(() => createIdxSource({ dir: path.join(dir, 'nope') })).message).toContain('(does not exist)');
  });
});
