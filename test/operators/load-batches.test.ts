import * as tf from '@tensorflow/tfjs';
import { concatMap, from, lastValueFrom, map, tap, timer, toArray } from 'rxjs';
import type { LoadedBatch } from '../../src/core/batch';
import { loadBatches, onePlanAtATime } from '../../src/operators/load-batches';
import { BatchPlanner } from '../../src/data/batch-plans';
import { createSyntheticSource } from '../../src/data/synthetic';

describe('loadBatches', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  const src = createSyntheticSource({ trainSize: 23, testSize: 5, imageShape: [3, 2, 2], seed: 1 });
  const planner = new BatchPlanner(src.info.sizes, { batchSize: 5, seed: 4 });

  it('loads each plan as NHWC floats bytes/255 with its indices and true labels', async () => {
    const before = tf.memory().numTensors;
    const batches = await lastValueFrom(
      planner.plans$('train', 1).pipe(
        loadBatches(src),
        map((b) => {
          const x = b.x.dataSync();
          b.x.dispose();
          return { ...b, xs: Array.from(x) };
        }),
        toArray(),
      ),
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(batches.map((b) => b.indices.length)).toEqual([5, 5, 5, 5, 3]);
    const s = src.split('train');
    for (const b of batches) {
      expect(b.stage).toBe('loaded');
      expect(b.x.shape).toEqual([b.indices.length, 3, 2, 2]);
      b.indices.forEach((idx, i) => {
        expect(b.labelsTrue[i]).toBe(s.labels[idx]);
        expect(b.labelsUsed[i]).toBe(s.labels[idx]);
        for (let k = 0; k < 12; k++) expect(b.xs[i * 12 + k]).toBe(Math.fround(s.images[idx * 12 + k] / 255));
      });
    }
  });

  /** Max number of live tensors seen by a slow (async) consumer over one epoch. */
  async function maxLiveTensors(perPlan: boolean): Promise<{ maxLive: number; emitted: number }> {
    const before = tf.memory().numTensors;
    let maxLive = 0;
    let emitted = 0;
    const slowConsumer = concatMap((b: LoadedBatch) =>
      timer(2).pipe(
        map(() => {
          maxLive = Math.max(maxLive, tf.memory().numTensors - before);
          b.x.dispose();
        }),
      ),
    );
    const plans = from(planner.planEpoch('train', 2)).pipe(tap(() => emitted++)); // races ahead: no backpressure
    await lastValueFrom(
      perPlan
        ? plans.pipe(
            onePlanAtATime((plan$) => plan$.pipe(loadBatches(src), slowConsumer)),
            toArray(),
          )
        : plans.pipe(loadBatches(src), slowConsumer, toArray()),
    );
    expect(tf.memory().numTensors).toBe(before);
    return { maxLive, emitted };
  }

  it('with async stages run per plan, only plans queue: one batch of tensors alive at a time', async () => {
    expect(await maxLiveTensors(true)).toEqual({ maxLive: 1, emitted: 5 });
  });

  it('(the hazard onePlanAtATime avoids: chained after loadBatches, an async stage queues loaded batches)', async () => {
    expect((await maxLiveTensors(false)).maxLive).toBeGreaterThan(1);
  });

  it('rejects a plan with an index outside the split', () => {
    expect(() => src.load({ split: 'test', epoch: 0, step: 0, indices: Int32Array.from([5]) })).toThrow(/index 5 is outside 0..4/);
  });
});
