import * as tf from '@tensorflow/tfjs';
import { concatMap, type OperatorFunction } from 'rxjs';
import { disposeBatch, trainedBatch, type AugmentedBatch, type LabeledBatch, type TrainedBatch } from '../../core/batch';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import type { Sgd } from '../../algorithms/optim/sgd';
import type { LrSchedule } from '../../algorithms/schedules/lr-schedule';
import type { TeBatchTarget, TemporalEnsemble } from '../../algorithms/trainers/te';
import { stepRecords, teUpdate } from '../../algorithms/train-step';
import type { DataParallelPool } from './pool';
import { trainStepParallel } from './train-step-parallel';

export interface AttackAndTrainParallelOptions {
  readonly pool: DataParallelPool;
  /** The main thread's model (updated here; evaluation passes use it). */
  readonly model: Model;
  readonly optimizer: Sgd;
  readonly lr: LrSchedule;
  readonly te?: TemporalEnsemble | null;
  /** Run seed; the batch's attack seed is deriveSeed(seed, 'attack', epoch, step) as in the `attack` operator. */
  readonly seed: number;
}

/**
 * `attack` + `train` as one data-parallel operator: LabeledBatch | AugmentedBatch → TrainedBatch, with
 * the same step record and example columns as the single-thread chain. With TE, the main thread runs
 * the eval-mode forward of the whole batch first (TE's EMA must see f(x) before the attack); the
 * workers then run attack + gradient on their shares.
 */
export function attackAndTrainParallel(
  options: AttackAndTrainParallelOptions,
): OperatorFunction<LabeledBatch | AugmentedBatch, TrainedBatch> {
  const { pool, model, optimizer, lr: lrSchedule, te, seed } = options;
  return concatMap(async (batch) => {
    const t0 = performance.now();
    const K = model.numClasses;
    try {
      // TE's EMA lives here: its update (the train step's, train-step.ts) needs the whole batch's f(x)
      let teInput: TeBatchTarget | null = null;
      if (te && te.isActive(batch.epoch)) {
        const logits = tf.tidy(() => model.apply(batch.x, 'eval'));
        teInput = teUpdate(te, batch.epoch, batch.indices, K)(logits.dataSync() as Float32Array);
        logits.dispose();
      }
      const lr = lrSchedule(batch.epoch);
      const r = await trainStepParallel(
        pool,
        model,
        optimizer,
        lr,
        {
          x: batch.x.dataSync() as Float32Array,
          shape: batch.x.shape,
          labels: batch.labelsUsed,
          seed: deriveSeed(seed, 'attack', batch.epoch, batch.step),
          rowKeys: batch.indices,
          te: teInput,
        },
        { epoch: batch.epoch, step: batch.step },
      );
      const { columns, record } = stepRecords({
        epoch: batch.epoch,
        step: batch.step,
        indices: batch.indices,
        labelsTrue: batch.labelsTrue,
        labelsUsed: batch.labelsUsed,
        numClasses: K,
        logitsClean: r.logitsNat ?? r.logitsNatEval,
        logitsAdv: r.logitsAdv,
        tePenalty: r.tePenalty ?? null,
        te: teInput,
        loss: r.loss,
        gradNormSq: r.gradNormSq,
        lr,
        ms: performance.now() - t0,
      });
      return trainedBatch(batch, columns, record);
    } finally {
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
    }
  });
}
