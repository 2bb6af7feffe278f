import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { loadBatches } from '../../src/operators/load-batches';
import { randomizeLabels } from '../../src/operators/randomize-labels';
import { BatchPlanner } from '../../src/data/batch-plans';
import { assignLabels } from '../../src/data/label-noise';
import { createSyntheticSource } from '../../src/data/synthetic';

describe('randomizeLabels', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  const src = createSyntheticSource({ trainSize: 40, testSize: 10, imageShape: [2, 2, 1], seed: 2 });
  const assignment = assignLabels('symmetric', 1, 5, src.split('train').labels, 10);

  /** example → label used, over one epoch in the planner's order */
  async function usedByExample(epoch: number, seed: number, split: 'train' | 'test' = 'train'): Promise<Map<number, number>> {
    const planner = new BatchPlanner(src.info.sizes, { batchSize: 7, seed });
    const out = new Map<number, number>();
    await lastValueFrom(
      from(planner.planEpoch(split, epoch)).pipe(
        loadBatches(src),
        randomizeLabels(assignment),
        map((b) => {
          expect(b.stage).toBe('labeled');
          b.indices.forEach((idx, i) => out.set(idx, b.labelsUsed[i]));
          b.x.dispose();
        }),
        toArray(),
      ),
    );
    return out;
  }

  it('uses the assignment by example index, whatever the epoch or batch order', async () => {
    const before = tf.memory().numTensors;
    const a = await usedByExample(1, 1);
    const b = await usedByExample(2, 99);
    expect(a.size).toBe(40);
    for (let i = 0; i < 40; i++) {
      expect(a.get(i)).toBe(assignment.labelsUsed[i]);
      expect(b.get(i)).toBe(assignment.labelsUsed[i]);
    }
    expect(assignment.noiseRate).toBeGreaterThan(0.5); // r = 1 really changes labels
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps the true labels on the test split and with no assignment', async () => {
    const t = await usedByExample(0, 1, 'test');
    for (let i = 0; i < 10; i++) expect(t.get(i)).toBe(src.split('test').labels[i]);
    const b = src.load({ split: 'train', epoch: 1, step: 0, indices: Int32Array.from([3, 4]) });
    const out = await lastValueFrom(from([b]).pipe(randomizeLabels(null)));
    expect(Array.from(out.labelsUsed)).toEqual(Array.from(b.labelsTrue));
    expect(out.x).toBe(b.x);
    b.x.dispose();
  });

  it('refuses an assignment made for another training split', async () => {
    const other = assignLabels('pair', 1, 5, Int32Array.from([9, 9, 9]), 10);
    const b = src.load({ split: 'train', epoch: 1, step: 0, indices: Int32Array.from([0, 1]) });
    await expect(lastValueFrom(from([b]).pipe(randomizeLabels(other)))).rejects.toThrow(/does not match the label assignment/);
    b.x.dispose();
  });
});
