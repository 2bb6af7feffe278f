import { BestEpochTracker, selectBestEpoch } from '../../src/analysis/best-epoch';

describe('best epoch (highest robust accuracy, ties by clean accuracy)', () => {
  it('picks by robust accuracy, breaks ties by clean accuracy, keeps the first of full ties', () => {
    const r = selectBestEpoch([
      { epoch: 1, robustAcc: 0.3, cleanAcc: 0.6 },
      { epoch: 2, robustAcc: 0.45, cleanAcc: 0.7 },
      { epoch: 3, robustAcc: 0.45, cleanAcc: 0.72 }, // tie on robust, better clean → best
      { epoch: 4, robustAcc: 0.45, cleanAcc: 0.72 }, // full tie → stays 3
      { epoch: 5, robustAcc: 0.44, cleanAcc: 0.9 },
      { epoch: 6, robustAcc: 0.4, cleanAcc: 0.8 },
    ]);
    expect(r.best.epoch).toBe(3);
    expect(r.final.epoch).toBe(6);
    expect(r.gap.robustAcc).toBeCloseTo(0.05, 12);
    expect(r.gap.cleanAcc).toBeCloseTo(-0.08, 12);
  });

  it('reports each new best as it happens (when to save the best checkpoint)', () => {
    const t = new BestEpochTracker();
    expect(t.update({ epoch: 1, robustAcc: 0.1, cleanAcc: 0.5 })).toBe(true);
    expect(t.update({ epoch: 2, robustAcc: 0.1, cleanAcc: 0.4 })).toBe(false);
    expect(t.update({ epoch: 3, robustAcc: 0.2, cleanAcc: 0.1 })).toBe(true);
    expect(t.best!.epoch).toBe(3);
    expect(() => t.update({ epoch: 4, robustAcc: NaN, cleanAcc: 0 })).toThrow(/robustAcc/);
    expect(() => selectBestEpoch([])).toThrow(/no evaluated epochs/);
  });
});
