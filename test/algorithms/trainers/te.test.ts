import { TemporalEnsemble, rowEntropy } from '../../../src/algorithms/trainers/te';

describe('TemporalEnsemble buffer (docs/algorithms.md §5.3)', () => {
  // Two examples (dataset indices 2 and 0) of N = 4, K = 3, η = 0.9, visited once in each of 2 epochs.
  const idx = new Int32Array([2, 0]);
  const q1 = new Float32Array([0.7, 0.2, 0.1, /* ex 0 */ 0.1, 0.1, 0.8]);
  const q2 = new Float32Array([0.1, 0.6, 0.3, /* ex 0 */ 0.5, 0.25, 0.25]);

  it('hand-worked: the first update gives p̂ = q, the second the bias-corrected EMA', () => {
    const te = new TemporalEnsemble(4, 3, { momentum: 0.9, start: 1, end: 2, weight: 1 });
    expect(Array.from(te.buffer)).toEqual(new Array(12).fill(0)); // zero-initialised

    const p1 = te.update(idx, q1);
    // p[2] = 0.1·q1 = [0.07, 0.02, 0.01]; p̂ = p / 0.1 = q1
    expect(te.buffer[6]).toBeCloseTo(0.07, 7);
    expect(te.buffer[7]).toBeCloseTo(0.02, 7);
    expect(te.buffer[8]).toBeCloseTo(0.01, 7);
    Array.from(p1).forEach((v, i) => expect(v).toBeCloseTo(q1[i], 6));

    const p2 = te.update(idx, q2);
    // p[2] = 0.9·[0.07,0.02,0.01] + 0.1·[0.1,0.6,0.3] = [0.073, 0.078, 0.039], Σ = 0.19
    // p[0] = 0.9·[0.01,0.01,0.08] + 0.1·[0.5,0.25,0.25] = [0.059, 0.034, 0.097], Σ = 0.19
    const expected = [0.073 / 0.19, 0.078 / 0.19, 0.039 / 0.19, 0.059 / 0.19, 0.034 / 0.19, 0.097 / 0.19];
    Array.from(p2).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    expect(te.buffer[0]).toBeCloseTo(0.059, 7);
    // rows 1 and 3 were never visited
    expect([3, 4, 5, 9, 10, 11].map((i) => te.buffer[i])).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(te.target(new Int32Array([1])))).toEqual([0, 0, 0]);
    // the same via the closed form Σ_j η^{k−j}(1−η) q_j / (1 − η^k), k = 2
    const closed = (a: number, b: number) => (0.9 * 0.1 * a + 0.1 * b) / (1 - 0.81);
    expect(p2[1]).toBeCloseTo(closed(0.2, 0.6), 6);
  });

  it('is active from the start epoch, with the ramp of the table', () => {
    const te = new TemporalEnsemble(10, 10);
    expect(te.isActive(89)).toBe(false);
    expect(te.isActive(90)).toBe(true);
    expect(te.weight(90)).toBeCloseTo(2.0214, 4);
    expect(te.weight(120)).toBeCloseTo(85.9514, 4);
    expect(te.weight(149)).toBeCloseTo(299.5836, 4);
  });

  it('exports and imports its state; rejects wrong shapes and indices', () => {
    const a = new TemporalEnsemble(4, 3, { start: 1 });
    a.update(idx, q1);
    const b = new TemporalEnsemble(4, 3, { start: 1 });
    b.importState(a.exportState());
    expect(Array.from(b.buffer)).toEqual(Array.from(a.buffer));
    expect(() => new TemporalEnsemble(5, 3).importState(a.exportState())).toThrow(/4×3/);
    expect(() => a.update(new Int32Array([4]), new Float32Array(3))).toThrow(/outside \[0, 4\)/);
    expect(() => a.update(idx, new Float32Array(3))).toThrow(/batch 2 × 3/);
    expect(() => new TemporalEnsemble(4, 3, { momentum: 1 })).toThrow(/te.momentum/);
  });

  it('row entropy of p̂', () => {
    const h = rowEntropy(new Float32Array([0.5, 0.5, 0, 1, 0, 0]), 3);
    expect(h[0]).toBeCloseTo(Math.log(2), 6);
    expect(h[1]).toBe(0);
  });
});
