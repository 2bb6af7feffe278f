import { lastValueFrom, toArray } from 'rxjs';
import { BatchPlanner, stepsPerEpoch } from '../../src/data/batch-plans';

describe('batch plans', () => {
  const planner = new BatchPlanner({ train: 10, test: 7 }, { batchSize: 4, evalBatchSize: 3, seed: 11 });

  it('visits every training index exactly once per epoch and keeps the last partial batch', () => {
    for (const epoch of [1, 2, 3]) {
      const plans = planner.planEpoch('train', epoch);
      expect(plans.map((p) => p.indices.length)).toEqual([4, 4, 2]);
      expect(plans.map((p) => p.step)).toEqual([0, 1, 2]);
      expect(plans.every((p) => p.epoch === epoch && p.split === 'train')).toBe(true);
      const all = plans.flatMap((p) => Array.from(p.indices)).sort((a, b) => a - b);
      expect(all).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(planner.steps('train')).toBe(3);
    expect(stepsPerEpoch(50000, 128)).toBe(391);
  });

  it('shuffles differently per epoch, identically for the same (seed, epoch)', () => {
    const order = (p: BatchPlanner, e: number) => p.planEpoch('train', e).flatMap((b) => Array.from(b.indices));
    expect(order(planner, 1)).not.toEqual(order(planner, 2));
    expect(order(planner, 1)).toEqual(order(new BatchPlanner({ train: 10 }, { batchSize: 4, seed: 11 }), 1));
    expect(order(planner, 1)).not.toEqual(order(new BatchPlanner({ train: 10 }, { batchSize: 4, seed: 12 }), 1));
    expect(order(new BatchPlanner({ train: 10 }, { batchSize: 4, seed: 11, shuffleTrain: false }), 1)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });

  it('keeps evaluation splits in file order with the eval batch size', () => {
    const plans = planner.planEpoch('test', 5);
    expect(plans.map((p) => Array.from(p.indices))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('emits the same plans lazily as an Observable, and can resume mid-epoch', async () => {
    const viaRx = await lastValueFrom(planner.plans$('train', 2).pipe(toArray()));
    expect(viaRx.map((p) => Array.from(p.indices))).toEqual(planner.planEpoch('train', 2).map((p) => Array.from(p.indices)));
    const resumed = await lastValueFrom(planner.plans$('train', 2, { fromStep: 1 }).pipe(toArray()));
    expect(resumed.map((p) => p.step)).toEqual([1, 2]);
    expect(resumed.map((p) => Array.from(p.indices))).toEqual(viaRx.slice(1).map((p) => Array.from(p.indices)));
  });

  it('lets a pass override shuffling and batch size (an evaluation pass over the training set)', () => {
    const plans = planner.planEpoch('train', 3, { shuffle: false, batchSize: 6 });
    expect(plans.map((p) => Array.from(p.indices))).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9],
    ]);
  });

  it('rejects bad batch sizes and unknown splits', () => {
    expect(() => new BatchPlanner({ train: 10 }, { batchSize: 0, seed: 1 })).toThrow(/batchSize = 0: expected an integer >= 1/);
    expect(() => planner.planEpoch('val', 1)).toThrow(/no 'val' split/);
  });
});
