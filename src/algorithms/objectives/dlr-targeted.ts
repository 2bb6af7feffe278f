import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { oneHotFloat, pick, topClassMasks } from './top-classes';
import { checkLabels } from './validate';

/** The targeted DLR divides by z_π1 − (z_π3 + z_π4)/2, so it needs at least four classes. */
export function checkTargetedDlrClasses(where: string, numClasses: number): void {
  if (numClasses < 4) {
    throw new AtflowError(
      'ARGUMENT',
      `${where}: the targeted DLR loss (APGD-T) needs at least 4 classes (it divides by z_π1 − (z_π3 + z_π4)/2), but the model has ${numClasses}; use APGD-CE ('apgd-ce')${numClasses >= 3 ? " or APGD-DLR ('apgd-dlr')" : ''} instead`,
      { where, numClasses },
    );
  }
}

/**
 * The targeted Difference of Logits Ratio of Croce & Hein (2020), per example:
 *   DLR-T_i = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e−12),
 * with t the target class and z_π1 ≥ z_π2 ≥ ... the sorted logits (AutoAttack's dlr_loss_targeted).
 * As in dlr.ts the ranking only picks entries; values are read from the logits so gradients flow.
 */
export function dlrTargetedLossPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  checkLabels('dlrTargetedLoss', logits, labels);
  checkLabels('dlrTargetedLoss', logits, targets);
  const k = logits.shape[1];
  checkTargetedDlrClasses('dlrTargetedLoss', k);
  return tf.tidy(() => {
    const [m1, , m3, m4] = topClassMasks(logits, 4);
    const zy = pick(oneHotFloat(labels, k), logits);
    const zt = pick(oneHotFloat(targets, k), logits);
    const denominator = tf.add(tf.sub(pick(m1, logits), tf.mul(tf.add(pick(m3, logits), pick(m4, logits)), 0.5)), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, zt), denominator)) as tf.Tensor1D;
  });
}
