import * as tf from '@tensorflow/tfjs';
import type { AttackObjective } from '../attacks/types';
import { crossEntropy } from './ce';
import { checkLabels, checkLogits, checkSameShape } from './validate';

/**
 * TRADES' KL term, KL(p(x) ‖ p(x')) per example (docs/algorithms.md §1, §12.4):
 *   KL_i = Σ_k p_k(x_i)·(log p_k(x_i) − log p_k(x'_i)),
 * which is PyTorch's KLDivLoss(reduction='none')(log_softmax(f(x')), softmax(f(x))) summed over k.
 * p(x) = exp(log_softmax(f(x))): where p_k underflows to 0 its term is exactly 0, PyTorch's convention
 * for a zero target (xlogy(0, ·) = 0). Gradients flow through both arguments (the training loss does not
 * detach the target); in the attack the natural logits are a constant w.r.t. x'.
 */
export function tradesKlPerExample(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D): tf.Tensor1D {
  checkLogits('tradesKl', 'logitsNat', logitsNat);
  checkLogits('tradesKl', 'logitsAdv', logitsAdv);
  checkSameShape('tradesKl', 'logitsNat', logitsNat, 'logitsAdv', logitsAdv);
  return tf.tidy(() => {
    const logpNat = tf.logSoftmax(logitsNat);
    const logpAdv = tf.logSoftmax(logitsAdv);
    return tf.sum(tf.mul(tf.exp(logpNat), tf.sub(logpNat, logpAdv)), 1) as tf.Tensor1D;
  });
}

/** KL_sum: the sum over batch and classes (KLDivLoss(size_average=False)), as the TRADES attack maximises it. */
export function tradesKlSum(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.sum(tradesKlPerExample(logitsNat, logitsAdv)) as tf.Scalar);
}

/** (1/B)·KL_sum: TRADES' loss_robust in training (docs/algorithms.md §5.2 step 4). */
export function tradesKlBatchMean(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.div(tradesKlSum(logitsNat, logitsAdv), logitsNat.shape[0]) as tf.Scalar);
}

/**
 * The TRADES training loss (docs/algorithms.md §5.2 step 5): CE_mean(f(x), y) + β·(1/B)·KL_sum(p(x) ‖ p(x')),
 * with f(x) and f(x') from two train-mode forwards and the target p(x) not detached.
 */
export function tradesLoss(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D, labels: tf.Tensor1D, beta: number): tf.Scalar {
  checkLabels('tradesLoss', logitsNat, labels);
  return tf.tidy(() => tf.add(crossEntropy(logitsNat, labels), tf.mul(tradesKlBatchMean(logitsNat, logitsAdv), beta)) as tf.Scalar);
}

export interface TradesKlObjectiveOptions {
  /**
   * Multiplies KL_sum. 1 (the default) is the TRADES attack before TE starts (unscaled KL_sum);
   * TRADES+TE after the start epoch uses β/B (docs/algorithms.md §4.3, §5.3).
   */
  readonly scale?: number;
}

/**
 * The TRADES attack objective: scale·KL_sum(softmax(logitsNat) ‖ softmax(f(x'))). `logitsNat` are the
 * eval-mode logits on the clean x, computed once by the caller, who owns them and must keep them alive
 * for as long as the objective is used. Labels are ignored. Per-example share: scale·KL_i.
 */
export function tradesKlObjective(logitsNat: tf.Tensor2D, options: TradesKlObjectiveOptions = {}): AttackObjective {
  const scale = options.scale ?? 1;
  const objective = (logitsAdv: tf.Tensor2D): tf.Scalar => tf.tidy(() => tf.mul(tradesKlSum(logitsNat, logitsAdv), scale) as tf.Scalar);
  return Object.assign(objective, {
    perExample: (logitsAdv: tf.Tensor2D): tf.Tensor1D =>
      tf.tidy(() => tf.mul(tradesKlPerExample(logitsNat, logitsAdv), scale) as tf.Tensor1D),
  });
}
