import { map, type OperatorFunction } from 'rxjs';
import type { EpochRecord } from '../../core/records';
import { BEST_EPOCH_RULE } from '../../analysis/best-epoch';
import type { EvaluatedEpoch, RecordedEpoch, RunContext } from './run-context';

/**
 * The epoch's row of epochs.parquet from what trainEpoch and evaluateEvery produced: the training
 * loss and squared gradient norm averaged over its steps, the evaluated accuracies and losses (NaN on
 * epochs not evaluated), times. `best_epoch` is left 0 for trackBest.
 */
export function recordEpoch(run: RunContext): OperatorFunction<EvaluatedEpoch, RecordedEpoch> {
  return map((s) => {
    const t = s.train;
    const e = s.evaluation;
    const record: EpochRecord & { val_clean_acc: number; val_robust_acc: number } = {
      epoch: s.epoch,
      lr: s.lr,
      te_weight: s.teWeight,
      train_loss: t.lossSum / Math.max(t.steps, 1),
      train_clean_acc: e.train?.cleanAcc ?? NaN,
      train_clean_loss: e.train?.cleanLoss ?? NaN,
      train_robust_acc: e.train?.robustAcc ?? NaN,
      train_robust_loss: e.train?.robustLoss ?? NaN,
      test_clean_acc: e.test?.cleanAcc ?? NaN,
      test_clean_loss: e.test?.cleanLoss ?? NaN,
      test_robust_acc: e.test?.robustAcc ?? NaN,
      test_robust_loss: e.test?.robustLoss ?? NaN,
      val_clean_acc: e.val?.cleanAcc ?? NaN,
      val_robust_acc: e.val?.robustAcc ?? NaN,
      grad_norm_sq_mean: t.gradSum / Math.max(t.steps, 1),
      wall_ms: Date.now() - s.startedAt,
      eval_ms: e.ms,
      best_epoch: 0,
      best_rule: BEST_EPOCH_RULE + (run.spec.eval.selectOn === 'val' && e.val ? ' (validation split)' : ' (test split)'),
    };
    return { ...s, stage: 'recorded', record };
  });
}
