import { Rng, deriveSeed } from '../../src/core/rng';

describe('seeded randomness', () => {
  it('derives different, stable seeds per purpose and part', () => {
    expect(deriveSeed(1, 'shuffle', 3)).toBe(deriveSeed(1, 'shuffle', 3));
    const seeds = new Set([
      deriveSeed(1, 'shuffle', 3),
      deriveSeed(1, 'shuffle', 4),
      deriveSeed(2, 'shuffle', 3),
      deriveSeed(1, 'labels', 3),
      deriveSeed(1, 'shuffle', 3, 0),
    ]);
    expect(seeds.size).toBe(5);
  });

  it('draws uniform numbers with the right mean and variance', () => {
    const r = new Rng(42);
    let s = 0;
    let s2 = 0;
    const n = 200000;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      s += u;
      s2 += u * u;
    }
    expect(s / n).toBeCloseTo(0.5, 2);
    expect(s2 / n - (s / n) ** 2).toBeCloseTo(1 / 12, 2);
  });

  it('draws normals with mean 0 and variance 1', () => {
    const r = new Rng(7);
    const a = r.fillNormal(new Float32Array(200000));
    const m = a.reduce((x, y) => x + y, 0) / a.length;
    const v = a.reduce((x, y) => x + (y - m) ** 2, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(v - 1)).toBeLessThan(0.02);
  });

  it('permutes: every index once, reproducibly', () => {
    const p = new Rng(3).permutation(1000);
    expect([...p].sort((a, b) => a - b)).toEqual([...Array(1000).keys()]);
    expect(new Rng(3).permutation(1000)).toEqual(p);
    expect(new Rng(4).permutation(1000)).not.toEqual(p);
  });
});
