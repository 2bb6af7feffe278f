import * as tf from '@tensorflow/tfjs';
import { lastValueFrom, of } from 'rxjs';
import { initBackend } from '../../../src/backend/select';
import { attackAndTrainParallel, DataParallelPool, shareSeed, splitShares } from '../../../src/backend/data-parallel';
import type { AugmentedBatch, TrainedBatch } from '../../../src/core/batch';
import type { Model } from '../../../src/core/model';
import { deriveSeed, Rng } from '../../../src/core/rng';
import { createModel } from '../../../src/models';
import { attack } from '../../../src/operators/attack';
import { Sgd } from '../../../src/operators/optim/sgd';
import { train } from '../../../src/operators/train';
import { createTrainer } from '../../../src/operators/trainers';
import type { TrainerOptions } from '../../../src/operators/trainers/types';

/**
 * A data-parallel step (workers = threads with their own wasm backend) against the single-thread
 * `attack` → `train` chain on the same batch, on a model without BatchNorm (cnn-small): the updated
 * weights, the step record and the example columns must agree.
 */
const B = 6;
const RUN_SEED = 11;
const LR = () => 0.05;

function batch(step: number): AugmentedBatch {
  const rng = new Rng(deriveSeed(3, 'dp-test-batch', step));
  const x = rng.fillUniform(new Float32Array(B * 28 * 28), 0, 1);
  const labels = Int32Array.from({ length: B }, () => rng.int(10));
  return {
    stage: 'augmented',
    split: 'train',
    epoch: 1,
    step,
    indices: Int32Array.from({ length: B }, (_, i) => step * B + i),
    x: tf.tensor4d(x, [B, 28, 28, 1]),
    labelsTrue: labels,
    labelsUsed: labels,
  };
}

function newModel(): Model {
  return createModel('cnn-small', { numClasses: 10, seed: 7 });
}

async function singleThreadSteps(trainerName: string, trainerOptions: TrainerOptions, steps: number): Promise<{ model: Model; out: TrainedBatch[] }> {
  const model = newModel();
  const trainer = createTrainer(trainerName, trainerOptions);
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
  const out: TrainedBatch[] = [];
  for (let s = 0; s < steps; s++) {
    out.push(await lastValueFrom(of(batch(s)).pipe(attack({ model, trainer, seed: RUN_SEED }), train({ model, trainer, optimizer, lr: LR }))));
  }
  optimizer.dispose();
  return { model, out };
}

async function parallelSteps(workers: number, trainerName: string, trainerOptions: TrainerOptions, steps: number): Promise<{ model: Model; out: TrainedBatch[]; left: number[] }> {
  const model = newModel();
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
  const pool = await DataParallelPool.create({ workers, model, trainer: trainerName, trainerOptions, backend: 'wasm' });
  const out: TrainedBatch[] = [];
  let left: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      out.push(await lastValueFrom(of(batch(s)).pipe(attackAndTrainParallel({ pool, model, optimizer, lr: LR, seed: RUN_SEED }))));
    }
  } finally {
    left = await pool.close();
    optimizer.dispose();
  }
  return { model, out, left };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectSameWeights(a: Model, b: Model, tol: number): void {
  a.parameters.forEach((p, i) => {
    expect(b.parameters[i].name).toBe(p.name);
    const d = maxAbsDiff(p.variable.dataSync(), b.parameters[i].variable.dataSync());
    if (d > tol) throw new Error(`${p.name}: max |Δ| ${d} > ${tol}`);
  });
}

function expectSameRecords(a: TrainedBatch, b: TrainedBatch): void {
  expect(b.record.loss).toBeCloseTo(a.record.loss, 5);
  expect(Math.abs(b.record.grad_norm_sq - a.record.grad_norm_sq)).toBeLessThan(1e-5 * Math.max(1, a.record.grad_norm_sq));
  expect(b.record.batch_size).toBe(B);
  expect(Array.from(b.columns.example)).toEqual(Array.from(a.columns.example));
  expect(maxAbsDiff(b.columns.loss_adv, a.columns.loss_adv)).toBeLessThan(1e-5);
  expect(maxAbsDiff(b.columns.loss_clean, a.columns.loss_clean)).toBeLessThan(1e-5);
  expect(Array.from(b.columns.pred_adv)).toEqual(Array.from(a.columns.pred_adv));
}

describe('data-parallel training on wasm (cnn-small, no BatchNorm)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('2 workers: two PGD-AT steps give the single-thread weights, records and columns (1e-5); workers free every tensor', async () => {
    const before = tf.memory().numTensors;
    // no random start: the share attacks then see exactly the rows of the single-thread attack
    const opts: TrainerOptions = { attack: { steps: 2, randomStart: 'none' } };
    const ref = await singleThreadSteps('pgd-at', opts, 2);
    const par = await parallelSteps(2, 'pgd-at', opts, 2);
    expectSameWeights(ref.model, par.model, 1e-5);
    ref.out.forEach((r, i) => expectSameRecords(r, par.out[i]));
    expect(par.left).toEqual([0, 0]);
    ref.model.dispose();
    par.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('1 worker with the random start: the single-thread step bit for bit (the share seed is the batch seed)', async () => {
    const opts: TrainerOptions = { attack: { steps: 2 } };
    const ref = await singleThreadSteps('pgd-at', opts, 1);
    const par = await parallelSteps(1, 'pgd-at', opts, 1);
    expectSameWeights(ref.model, par.model, 0);
    expectSameRecords(ref.out[0], par.out[0]);
    ref.model.dispose();
    par.model.dispose();
  });

  it('TRADES (a natural and an adversarial train-mode forward) with 3 workers on uneven shares', async () => {
    const opts: TrainerOptions = { attack: { steps: 1, randomStart: 'none' } };
    const ref = await singleThreadSteps('trades', opts, 1);
    const par = await parallelSteps(3, 'trades', opts, 1);
    expectSameWeights(ref.model, par.model, 1e-5);
    expectSameRecords(ref.out[0], par.out[0]);
    ref.model.dispose();
    par.model.dispose();
  });

  it('a worker error reaches the caller as an AtflowError, and the pool still closes', async () => {
    const model = newModel();
    const pool = await DataParallelPool.create({ workers: 1, model, trainer: 'standard', backend: 'wasm' });
    try {
      // right number of values, wrong image shape: the replica's model refuses it
      await expect(pool.step({ x: new Float32Array(2 * 784), shape: [2, 14, 56, 1], labels: new Int32Array([0, 1]), seed: 1, te: null })).rejects.toThrow(
        /data-parallel worker 0: model 'cnn-small' takes NHWC input \[B, 28, 28, 1\]/,
      );
    } finally {
      expect(await pool.close()).toEqual([0]);
      model.dispose();
    }
  });

  it('an unknown model name fails at create with a clear error', async () => {
    const model = newModel();
    const fake: Model = { ...model, name: 'no-such-model', apply: model.apply.bind(model), dispose: () => model.dispose() };
    await expect(DataParallelPool.create({ workers: 1, model: fake, trainer: 'standard' })).rejects.toThrow(/unknown model 'no-such-model'/);
    model.dispose();
  });
});

describe('shares', () => {
  it('contiguous, as equal as possible, empty shares dropped', () => {
    expect(splitShares(7, 3)).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 5 },
      { start: 5, end: 7 },
    ]);
    expect(splitShares(2, 4)).toEqual([
      { start: 0, end: 1 },
      { start: 1, end: 2 },
    ]);
    expect(() => splitShares(0, 2)).toThrow(/batch size/);
    expect(() => splitShares(4, 0)).toThrow(/workers/);
  });

  it('the whole batch keeps the batch seed; other shares derive theirs from their rows', () => {
    expect(shareSeed(123, { start: 0, end: 8 }, 8)).toBe(123);
    expect(shareSeed(123, { start: 0, end: 4 }, 8)).toBe(deriveSeed(123, 'data-parallel-share', 0, 4));
    expect(shareSeed(123, { start: 4, end: 8 }, 8)).not.toBe(shareSeed(123, { start: 0, end: 4 }, 8));
  });
});
