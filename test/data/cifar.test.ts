import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { createSource } from '../../src/config/builtins';
import { cifarFile, patternMismatch, tempDir } from './helpers/official-files';

const PER_BATCH = 4;

/** CIFAR-10 binary version, in the official folder: data_batch_1..5.bin, test_batch.bin (4 records each). */
function writeCifar10(root: string): string {
  const dir = path.join(root, 'cifar-10-batches-bin');
  fs.mkdirSync(dir);
  for (let b = 1; b <= 5; b++) {
    const first = (b - 1) * PER_BATCH;
    const labels = Array.from({ length: PER_BATCH }, (_, i) => [(first + i) % 10]);
    fs.writeFileSync(path.join(dir, `data_batch_${b}.bin`), cifarFile(labels, first));
  }
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarFile([[9], [0], [5]], 100));
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'airplane\n');
  return dir;
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

describe('CIFAR-10 binary reader', () => {
  it('round-trips every pixel (CHW → HWC) and label, from the folder or its parent', () => {
    const root = tempDir();
    const dir = writeCifar10(root);
    for (const d of [root, dir]) {
      const src = createSource('cifar10', { dir: d });
      expect(src.info).toMatchObject({
        name: 'cifar10',
        numClasses: 10,
        imageShape: [32, 32, 3],
        sizes: { train: 20, test: 3 },
        defaultAugment: true,
      });
      const train = src.split('train');
      expect(Array.from(train.labels)).toEqual(Array.from({ length: 20 }, (_, i) => i % 10));
      for (let i = 0; i < 20; i++) expect(patternMismatch(train.images, i, 32, 32, 3)).toBeNull();
      const test = src.split('test');
      expect(Array.from(test.labels)).toEqual([9, 0, 5]);
      for (let i = 0; i < 3; i++) expect(patternMismatch(test.images, i, 32, 32, 3, 100 + i)).toBeNull();
    }
  });

  it('rejects a file that is not a whole number of 3073-byte records, naming it', () => {
    const dir = writeCifar10(tempDir());
    fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), Buffer.alloc(30000));
    const e = errorOf(() => createSource('cifar10', { dir }));
    expect(e.code).toBe('DATA_FILE');
    expect(e.message).toContain('data_batch_3.bin: size 30000 bytes is not a multiple of the 3073-byte CIFAR-10 record');
  });

  it('spots a batch cut at a record boundary and out-of-range labels', () => {
    const dir = writeCifar10(tempDir());
    fs.writeFileSync(path.join(dir, 'data_batch_4.bin'), cifarFile([[1], [2], [3]]));
    expect(errorOf(() => createSource('cifar10', { dir })).message).toMatch(
      /data_batch_4.bin: 3 records but data_batch_1.bin has 4.*truncated/,
    );
    fs.writeFileSync(path.join(dir, 'data_batch_4.bin'), cifarFile([[1], [2], [10], [3]]));
    expect(errorOf(() => createSource('cifar10', { dir })).message).toMatch(/data_batch_4.bin: record 2 has label 10; expected 0..9/);
  });

  it('names the folders looked in and the expected files when they are missing', () => {
    const root = tempDir();
    const e = errorOf(() => createSource('cifar10', { dir: root }));
    expect(e.message).toContain(root);
    expect(e.message).toContain(path.join(root, 'cifar-10-batches-bin'));
    expect(e.message).toContain('data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin');
  });
});

describe('CIFAR-100 binary reader', () => {
  function writeCifar100(): string {
    const root = tempDir();
    const dir = path.join(root, 'cifar-100-binary');
    fs.mkdirSync(dir);
    // coarse, fine
    fs.writeFileSync(
      path.join(dir, 'train.bin'),
      cifarFile([
        [19, 99],
        [0, 7],
        [4, 42],
        [11, 0],
      ]),
    );
    fs.writeFileSync(
      path.join(dir, 'test.bin'),
      cifarFile(
        [
          [3, 55],
          [7, 8],
        ],
        50,
      ),
    );
    return root;
  }

  it('reads fine labels by default and coarse labels on request, pixels exact', () => {
    const root = writeCifar100();
    const fine = createSource('cifar100', { dir: root });
    expect(fine.info).toMatchObject({ numClasses: 100, sizes: { train: 4, test: 2 }, defaultAugment: true });
    expect(Array.from(fine.split('train').labels)).toEqual([99, 7, 42, 0]);
    expect(Array.from(fine.split('test').labels)).toEqual([55, 8]);
    for (let i = 0; i < 4; i++) expect(patternMismatch(fine.split('train').images, i, 32, 32, 3)).toBeNull();
    for (let i = 0; i < 2; i++) expect(patternMismatch(fine.split('test').images, i, 32, 32, 3, 50 + i)).toBeNull();
    const coarse = createSource('cifar100', { dir: root, labels: 'coarse' });
    expect(coarse.info.numClasses).toBe(20);
    expect(Array.from(coarse.split('train').labels)).toEqual([19, 0, 4, 11]);
  });

  it('rejects a CIFAR-10 file given as CIFAR-100 and a bad coarse label', () => {
    const root = writeCifar100();
    const dir = path.join(root, 'cifar-100-binary');
    fs.writeFileSync(path.join(dir, 'test.bin'), cifarFile([[3], [7]]));
    expect(errorOf(() => createSource('cifar100', { dir })).message).toContain(
      'test.bin: size 6146 bytes is not a multiple of the 3074-byte CIFAR-100 record',
    );
    fs.writeFileSync(path.join(dir, 'test.bin'), cifarFile([[20, 1]]));
    expect(errorOf(() => createSource('cifar100', { dir })).message).toMatch(/test.bin: record 0 has coarse label 20; expected 0..19/);
    expect(errorOf(() => createSource('cifar100', { dir, labels: 'mid' as never })).message).toContain("expected 'fine' or 'coarse'");
  });
});
