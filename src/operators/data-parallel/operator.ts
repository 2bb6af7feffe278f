import * as tf from '@tensorflow/tfjs';
import { concatMap, type OperatorFunction } from 'rxjs';
import { disposeBatch, trainedBatch, type AugmentedBatch, type LabeledBatch, type TrainedBatch } from '../../core/batch';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import type { ExampleColumns, StepRecord } from '../../core/records';
import { deriveSeed } from '../../core/rng';
import type { Sgd } from '../optim/sgd';
import { nonFiniteStepError } from '../train';
import type { LrSchedule } from '../schedules/lr-schedule';
import { exampleColumns, logitStats, softmaxRows } from '../trainers/logit-stats';
import { rowEntropy, type TemporalEnsemble } from '../trainers/te';
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
export function attackAndTrainParallel(options: AttackAndTrainParallelOptions): OperatorFunction<LabeledBatch | AugmentedBatch, TrainedBatch> {
  const { pool, model, optimizer, lr: lrSchedule, te, seed } = options;
  return concatMap(async (batch) => {
    const t0 = performance.now();
    const B = batch.indices.length;
    const K = model.numClasses;
    try {
      let teInput: { weight: number; target: Float32Array } | null = null;
      if (te && te.isActive(batch.epoch)) {
        const logits = tf.tidy(() => model.apply(batch.x, 'eval'));
        const probs = softmaxRows(logits.dataSync() as Float32Array, K);
        logits.dispose();
        teInput = { weight: te.weight(batch.epoch), target: te.update(batch.indices, probs) };
      }
      const lr = lrSchedule(batch.epoch);
      const r = await trainStepParallel(pool, model, optimizer, lr, {
        x: batch.x.dataSync() as Float32Array,
        shape: batch.x.shape,
        labels: batch.labelsUsed,
        seed: deriveSeed(seed, 'attack', batch.epoch, batch.step),
        rowKeys: batch.indices,
        te: teInput,
      }).catch((e) => {
        // name the epoch, step and examples, as the single-thread `train` operator does
        if (!(e instanceof AtflowError && e.code === 'NON_FINITE' && Array.isArray(e.details.rows))) throw e;
        const d = e.details as { loss: number; gradNormSq: number; rows: number[] };
        throw nonFiniteStepError('data-parallel train step:', d.loss, d.gradNormSq, batch.epoch, batch.step, batch.indices, d.rows);
      });
      const clean = logitStats(r.logitsNat ?? r.logitsNatEval, batch.labelsUsed, K);
      const adv = logitStats(r.logitsAdv, batch.labelsUsed, K);
      const columns: ExampleColumns = exampleColumns({
        epoch: batch.epoch,
        phase: 'train',
        indices: batch.indices,
        labelsTrue: batch.labelsTrue,
        labelsUsed: batch.labelsUsed,
        clean,
        adv,
        teTargetEntropy: teInput ? rowEntropy(teInput.target, K) : null,
        tePenalty: r.tePenalty ?? null,
      });
      const record: StepRecord = {
        epoch: batch.epoch,
        step: batch.step,
        loss: r.loss,
        grad_norm_sq: r.gradNormSq,
        lr,
        ms: performance.now() - t0,
        batch_size: B,
      };
      return trainedBatch(batch, columns, record);
    } finally {
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
    }
  });
}
