import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { AttackObjective } from '../attacks/types';
import { oneHotFloat, pick, topClassMasks } from './top-classes';
import { checkLabels } from './validate';

/** DLR divides by z_π1 − z_π3, so it needs at least three classes. */
export function checkDlrClasses(where: string, numClasses: number): void {
  if (numClasses < 3) {
    throw new AtflowError(
      'ARGUMENT',
      `${where}: the DLR loss needs at least 3 classes (it divides by z_π1 − ` +
        `z_π3, the gap between the largest and the third-largest logit), but ` +
        `the model has ${numClasses}; use APGD-CE ('apgd-ce') or CW ('cw') ` +
        `instead`,
      { where, numClasses },
    );
  }
}

/**
 * The Difference of Logits Ratio of Croce & Hein (2020), per example:
 *   DLR_i = −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e−12),
 * with z_π1 ≥ z_π2 ≥ z_π3 the sorted logits. As in AutoAttack's dlr_loss, max_{j≠y} z_j is z_π2 when the
 * top class is y, else z_π1. The ranking only picks entries; values are read back from the logits so that
 * the gradient flows to the right entries (as through PyTorch's sort values).
 */
export function dlrLossPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  checkLabels('dlrLoss', logits, labels);
  const k = logits.shape[1];
  checkDlrClasses('dlrLoss', k);
  return tf.tidy(() => {
    const [m1, m2, m3] = topClassMasks(logits, 3);
    const z1 = pick(m1, logits);
    const z2 = pick(m2, logits);
    const z3 = pick(m3, logits);
    const labelMask = oneHotFloat(labels, k);
    // ind = [top class == y], then z_other = z_π2·ind + z_π1·(1 − ind), as the reference
    const ind = pick(m1, labelMask);
    const zOther = tf.add(tf.mul(z2, ind), tf.mul(z1, tf.sub(1, ind)));
    return tf.neg(tf.div(tf.sub(pick(labelMask, logits), zOther), tf.add(tf.sub(z1, z3), 1e-12))) as tf.Tensor1D;
  });
}

/** Sum of the per-example DLR losses (AutoAttack maximises loss_indiv.sum()). */
export function dlrLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(dlrLossPerExample(logits, labels)) as tf.Scalar);
}

/** DLR as an attack objective (sum over the batch; per-example share DLR_i). */
export function dlrObjective(): AttackObjective {
  const objective = (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar => dlrLoss(logitsAdv, y);
  return Object.assign(objective, { perExample: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D) => dlrLossPerExample(logitsAdv, y) });
}
