import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { disposeBatch, type AttackedBatch, type AugmentedBatch, type LabeledBatch } from '../core/batch';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { faultPoint } from '../core/fault-injection';
import { softmaxRows } from './trainers/logit-stats';
import type { TemporalEnsemble } from './trainers/te';
import type { TeTensors, Trainer } from './trainers/types';

export interface AttackOperatorOptions {
  readonly model: Model;
  readonly trainer: Trainer;
  /** Temporal ensembling, shared with nothing else: `attack` is where its EMA is updated. */
  readonly te?: TemporalEnsemble | null;
  /** Run seed; each batch's attack seed is deriveSeed(seed, 'attack', epoch, step). */
  readonly seed: number;
}

/**
 * The inner maximisation, as an operator: LabeledBatch | AugmentedBatch → AttackedBatch.
 * Per batch, in this order (docs/algorithms.md §5.3 steps 1–3):
 *  1. eval-mode logits f(x) on the clean (augmented) batch;
 *  2. from TE's start epoch: p ← η·p + (1 − η)·softmax(f(x)) for the batch's rows, p̂ = row-normalised p;
 *  3. the trainer's attack (eval mode), with f(x) and (p̂, w(t)) at hand.
 * The batch's `x` passes on unchanged; `xAdv` is new. On an error both are disposed.
 */
export function attack(options: AttackOperatorOptions): OperatorFunction<LabeledBatch | AugmentedBatch, AttackedBatch> {
  const { model, trainer, te, seed } = options;
  return map((batch) => {
    const t0 = performance.now();
    const K = model.numClasses;
    let y: tf.Tensor1D | undefined;
    let logitsNat: tf.Tensor2D | undefined;
    let teTensors: TeTensors | null = null;
    try {
      y = tf.tensor1d(batch.labelsUsed, 'int32');
      logitsNat = tf.tidy(() => model.apply(batch.x, 'eval'));
      const logitsNatEval = logitsNat.dataSync().slice() as Float32Array;
      let teBatch: AttackedBatch['te'] = null;
      if (te && te.isActive(batch.epoch)) {
        const target = te.update(batch.indices, softmaxRows(logitsNatEval, K));
        teBatch = { weight: te.weight(batch.epoch), target };
        teTensors = { weight: teBatch.weight, target: tf.tensor2d(target, [batch.indices.length, K]) };
      }
      faultPoint('attack');
      const xAdv = trainer.attack({
        model,
        x: batch.x,
        y,
        seed: deriveSeed(seed, 'attack', batch.epoch, batch.step),
        rowKeys: batch.indices,
        logitsNatEval: logitsNat,
        te: teTensors,
      });
      const out: AttackedBatch = {
        ...batch,
        stage: 'attacked',
        xAdv,
        numClasses: K,
        logitsNatEval,
        te: teBatch,
        attackMs: performance.now() - t0,
      };
      return out;
    } catch (e) {
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
      throw e;
    } finally {
      y?.dispose();
      logitsNat?.dispose();
      teTensors?.target.dispose();
    }
  });
}
