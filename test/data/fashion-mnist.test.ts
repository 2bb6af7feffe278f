import * as fs from 'fs';
import { AtflowError } from '../../src/core/errors';
import { createSource } from '../../src/config/builtins';
import { DEBIAN_FASHION_MNIST_DIR } from '../../src/data/idx';

/**
 * The real Fashion-MNIST from Debian's package (`apt-get install -y dataset-fashion-mnist`).
 * Reference values computed independently with numpy from the same .gz files.
 * Without the package, the test checks the error instead (never skipped).
 */
const installed = fs.existsSync(`${DEBIAN_FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`);

describe('fashion-mnist (Debian dataset-fashion-mnist)', () => {
  if (installed) {
    it('reads the real 60,000 / 10,000 images with the known labels and pixels', () => {
      const src = createSource('fashion-mnist');
      expect(src.info).toMatchObject({
        name: 'fashion-mnist',
        numClasses: 10,
        imageShape: [28, 28, 1],
        sizes: { train: 60000, test: 10000 },
      });
      const train = src.split('train');
      const test = src.split('test');
      expect(Array.from(train.labels.subarray(0, 12))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9]);
      expect(Array.from(test.labels.subarray(0, 12))).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5]);
      const hist = (l: Int32Array) => Array.from({ length: 10 }, (_, k) => l.filter((v) => v === k).length);
      expect(hist(train.labels)).toEqual(new Array(10).fill(6000));
      expect(hist(test.labels)).toEqual(new Array(10).fill(1000));
      const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
      expect(sum(train.images.subarray(0, 784))).toBe(76247);
      expect(sum(test.images.subarray(0, 784))).toBe(33456);
      expect(Array.from(train.images.subarray(14 * 28 + 10, 14 * 28 + 20))).toEqual([0, 0, 237, 226, 217, 223, 222, 219, 222, 221]);
      expect(Array.from(test.images.subarray(14 * 28 + 10, 14 * 28 + 20))).toEqual([0, 0, 98, 136, 110, 109, 110, 162, 135, 144]);
    });
  } else {
    it('without the Debian package, says where it looked and how to install it', () => {
      expect(() => createSource('fashion-mnist')).toThrow(AtflowError);
      expect(() => createSource('fashion-mnist')).toThrow(
        /\/usr\/share\/datasets\/fashion-mnist.*apt-get install -y dataset-fashion-mnist/,
      );
    });
  }
});
