import * as tf from '@tensorflow/tfjs';
import type { AttackObjective } from '../attacks/types';
import { checkLabels } from './validate';

/**
 * The Carlini-Wagner margin per example (docs/algorithms.md §4.4, CW∞): max_{j≠y} z_j − z_y. Positive iff the
 * example is misclassified. The max excludes y by masking it to −∞ (no large-constant trick, so it is
 * exact for any logit scale).
 */
export function cwMarginPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  checkLabels('cwMargin', logits, labels);
  return tf.tidy(() => {
    const isLabel = tf.cast(tf.oneHot(labels, logits.shape[1]), 'bool');
    const others = tf.where(isLabel, tf.fill(logits.shape, -Infinity), logits);
    const zy = tf.sum(tf.where(isLabel, logits, tf.zerosLike(logits)), 1);
    return tf.sub(tf.max(others, 1), zy) as tf.Tensor1D;
  });
}

/** Mean CW margin over the batch. */
export function cwMargin(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(cwMarginPerExample(logits, labels)) as tf.Scalar);
}

/** The CW∞ attack objective: mean_i (max_{j≠y} z_j − z_y); per-example share margin_i / B. */
export function cwObjective(): AttackObjective {
  const objective = (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar => cwMargin(logitsAdv, y);
  return Object.assign(objective, {
    perExample: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D =>
      tf.tidy(() => tf.div(cwMarginPerExample(logitsAdv, y), logitsAdv.shape[0]) as tf.Tensor1D),
  });
}
