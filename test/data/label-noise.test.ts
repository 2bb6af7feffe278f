import { AtflowError } from '../../src/core/errors';
import { assignLabels, empiricalTransition, expectedNoiseRate, labelColumns, labelsEvent } from '../../src/data/label-noise';

const N = 20000;
const K = 10;
const labels = Int32Array.from({ length: N }, (_, i) => i % K);
/** 4σ of a binomial proportion */
const tol = (p: number, n: number) => 4 * Math.sqrt((p * (1 - p)) / n) + 1e-9;

describe('label noise', () => {
  it('symmetric: redraws over all K classes with probability r (changed ≈ r(K−1)/K, P = (r/K)11ᵀ + (1−r)I)', () => {
    for (const r of [0.2, 0.6]) {
      const a = assignLabels('symmetric', r, 1, labels, K);
      const expected = (r * (K - 1)) / K;
      expect(expectedNoiseRate('symmetric', r, K)).toBeCloseTo(expected, 12);
      expect(Math.abs(a.noiseRate - expected)).toBeLessThan(tol(expected, N));
      const m = empiricalTransition(a);
      for (let i = 0; i < K; i++)
        for (let j = 0; j < K; j++) {
          const p = (i === j ? 1 - r : 0) + r / K;
          expect(Math.abs(m[i * K + j] - p)).toBeLessThan(tol(p, N / K));
        }
    }
  });

  it('symmetric r = 1 gives labels independent of the true ones (changed ≈ 0.9 for K = 10)', () => {
    const a = assignLabels('symmetric', 1, 2, labels, K);
    expect(Math.abs(a.noiseRate - 0.9)).toBeLessThan(tol(0.9, N));
    const m = empiricalTransition(a);
    for (let k = 0; k < K * K; k++) expect(Math.abs(m[k] - 0.1)).toBeLessThan(tol(0.1, N / K));
  });

  it('symmetric-exclusive: with probability r always another class, uniformly', () => {
    const r = 0.4;
    const a = assignLabels('symmetric-exclusive', r, 3, labels, K);
    expect(Math.abs(a.noiseRate - r)).toBeLessThan(tol(r, N));
    const m = empiricalTransition(a);
    for (let i = 0; i < K; i++)
      for (let j = 0; j < K; j++) {
        const p = i === j ? 1 - r : r / (K - 1);
        expect(Math.abs(m[i * K + j] - p)).toBeLessThan(tol(p, N / K));
      }
  });

  it('pair: with probability r class k becomes k+1 mod K, never anything else', () => {
    const r = 0.3;
    const a = assignLabels('pair', r, 4, labels, K);
    const other = a.labelsUsed.filter((v, i) => v !== labels[i] && v !== (labels[i] + 1) % K);
    expect(other.length).toBe(0);
    expect(Math.abs(a.noiseRate - r)).toBeLessThan(tol(r, N));
    expect(a.labelsUsed.some((v, i) => labels[i] === 9 && v === 0)).toBe(true);
  });

  it('is a pure function of (seed, index): the same on every call and for any prefix of the set', () => {
    const a = assignLabels('symmetric', 0.5, 7, labels, K);
    const b = assignLabels('symmetric', 0.5, 7, labels, K);
    expect(Array.from(b.labelsUsed)).toEqual(Array.from(a.labelsUsed));
    const prefix = assignLabels('symmetric', 0.5, 7, labels.subarray(0, 500), K);
    expect(Array.from(prefix.labelsUsed)).toEqual(Array.from(a.labelsUsed.subarray(0, 500)));
    const other = assignLabels('symmetric', 0.5, 8, labels, K);
    expect(Array.from(other.labelsUsed)).not.toEqual(Array.from(a.labelsUsed));
  });

  it('rate 0 and kind none keep the true labels', () => {
    expect(assignLabels('symmetric', 0, 1, labels, K).noiseRate).toBe(0);
    expect(Array.from(assignLabels('none', 1, 1, labels, K).labelsUsed)).toEqual(Array.from(labels));
  });

  it('exposes the labels.parquet columns', () => {
    const a = assignLabels('pair', 1, 1, Int32Array.from([0, 3, 9]), K);
    const c = labelColumns(a);
    expect(Array.from(c.example)).toEqual([0, 1, 2]);
    expect(Array.from(c.label_true)).toEqual([0, 3, 9]);
    expect(Array.from(c.label_used)).toEqual([1, 4, 0]);
    const ev = labelsEvent(a);
    expect(ev.type).toBe('labels');
    expect(ev.noiseRate).toBe(1);
    expect(Array.from(ev.label_used)).toEqual([1, 4, 0]);
  });

  it('rejects bad arguments', () => {
    expect(() => assignLabels('symmetric', 1.5, 1, labels, K)).toThrow(/rate = 1.5: expected a number in \[0, 1\]/);
    expect(() => assignLabels('symetric' as never, 0.1, 1, labels, K)).toThrow(AtflowError);
    expect(() => assignLabels('symetric' as never, 0.1, 1, labels, K)).toThrow(/did you mean 'symmetric'/);
    expect(() => assignLabels('pair', 0.1, 1, Int32Array.from([10]), K)).toThrow(/true label 10 of example 0 is outside 0..9/);
  });
});
