import type * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { disposeBatch, type AttackedBatch, type AugmentedBatch, type LabeledBatch } from '../core/batch';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { faultPoint } from '../core/fault-injection';
import type { TemporalEnsemble } from '../algorithms/trainers/te';
import type { Trainer } from '../algorithms/trainers/types';
import { attackHalf, teUpdate } from '../algorithms/train-step';

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
 * The batch's `x` passes on unchanged; `xAdv` is new. On an error both are disposed. The work is the
 * train step's first half (train-step.ts), which the data-parallel workers run on their shares too.
 */
export function attack(options: AttackOperatorOptions): OperatorFunction<LabeledBatch | AugmentedBatch, AttackedBatch> {
  const { model, trainer, te, seed } = options;
  return map((batch) => {
    const t0 = performance.now();
    const K = model.numClasses;
    try {
      const half = attackHalf({
        model,
        trainer,
        x: batch.x,
        labels: batch.labelsUsed,
        seed: deriveSeed(seed, 'attack', batch.epoch, batch.step),
        rowKeys: batch.indices,
        teTarget: teUpdate(te, batch.epoch, batch.indices, K),
        beforeAttack: () => faultPoint('attack'),
      });
      const out: AttackedBatch = {
        ...batch,
        stage: 'attacked',
        xAdv: half.xAdv,
        numClasses: K,
        logitsNatEval: half.logitsNatEval,
        te: half.te,
        attackMs: performance.now() - t0,
      };
      return out;
    } catch (e) {
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
      throw e;
    }
  });
}
