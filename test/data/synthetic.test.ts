import { createSource } from '../../src/config/builtins';
import { createSyntheticSource } from '../../src/data/synthetic';

describe('synthetic source', () => {
  it('has the requested shape, sizes and balanced labels i mod K', () => {
    const src = createSource('synthetic', { numClasses: 4, imageShape: [5, 3, 2], trainSize: 40, testSize: 8 });
    expect(src.info).toMatchObject({ name: 'synthetic', numClasses: 4, imageShape: [5, 3, 2], sizes: { train: 40, test: 8 } });
    expect(src.split('train').images.length).toBe(40 * 30);
    expect(Array.from(src.split('test').labels)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it('is a pure function of (seed, split, index): same seed same bytes, any size', () => {
    const a = createSyntheticSource({ trainSize: 10, imageShape: [4, 4, 3], seed: 5 });
    const b = createSyntheticSource({ trainSize: 30, imageShape: [4, 4, 3], seed: 5 });
    const c = createSyntheticSource({ trainSize: 10, imageShape: [4, 4, 3], seed: 6 });
    expect(Array.from(b.split('train').images.subarray(0, 480))).toEqual(Array.from(a.split('train').images));
    expect(Array.from(c.split('train').images)).not.toEqual(Array.from(a.split('train').images));
  });

  it('is class-conditional: examples sit closer to their own class mean than to the others', () => {
    const src = createSyntheticSource({ numClasses: 3, trainSize: 300, imageShape: [8, 8, 1], noise: 0.2, separation: 0.15, seed: 1 });
    const s = src.split('train');
    const per = 64;
    const means = [0, 1, 2].map((k) => {
      const m = new Float64Array(per);
      let n = 0;
      for (let i = 0; i < s.size; i++)
        if (s.labels[i] === k) {
          n++;
          for (let p = 0; p < per; p++) m[p] += s.images[i * per + p];
        }
      return m.map((v) => v / n);
    });
    let nearestOwn = 0;
    for (let i = 0; i < s.size; i++) {
      const d = means.map((m) => m.reduce((acc, v, p) => acc + (s.images[i * per + p] - v) ** 2, 0));
      if (d.indexOf(Math.min(...d)) === s.labels[i]) nearestOwn++;
    }
    expect(nearestOwn / s.size).toBeGreaterThan(0.95);
    // pixel noise around the class mean is about noise·255 (before clipping)
    let sq = 0;
    for (let i = 0; i < s.size; i++) for (let p = 0; p < per; p++) sq += (s.images[i * per + p] - means[s.labels[i]][p]) ** 2;
    expect(Math.sqrt(sq / (s.size * per)) / 255).toBeGreaterThan(0.15);
    expect(Math.sqrt(sq / (s.size * per)) / 255).toBeLessThan(0.21);
  });

  it('rejects bad options by name', () => {
    expect(() => createSyntheticSource({ numClasses: 1 })).toThrow(/numClasses = 1: expected an integer >= 2/);
    expect(() => createSyntheticSource({ imageShape: [0, 2, 1] })).toThrow(/imageShape\[0\] = 0/);
    expect(() => createSyntheticSource({ noise: -1 })).toThrow(/noise = -1/);
  });
});
