import * as tf from '@tensorflow/tfjs';
import type { AttackObjective } from '../attacks/types';
import { oneHotFloat } from './top-classes';
import { checkLabels } from './validate';

/**
 * Cross-entropy with integer labels, as PyTorch's F.cross_entropy (docs/algorithms.md §1):
 * CE_i = −log softmax(z_i)_{y_i}, from tf.logSoftmax (max-shifted, so stable for large logits).
 */
export function crossEntropyPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  checkLabels('crossEntropy', logits, labels);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    // one-hot × log p picks log p_y and keeps the gradient w.r.t. the logits exact (softmax − onehot)
    const onehot = oneHotFloat(labels, logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(onehot, logp), 1)) as tf.Tensor1D;
  });
}

/** Mean cross-entropy over the batch (F.cross_entropy, reduction 'mean'). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mean(crossEntropyPerExample(logits, labels)) as tf.Scalar);
}

/** The PGD attack objective: CE_mean(f(x'), y). Per-example share CE_i / B. */
export function ceObjective(): AttackObjective {
  const objective = (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar => crossEntropy(logitsAdv, y);
  return Object.assign(objective, {
    perExample: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D =>
      tf.tidy(() => tf.div(crossEntropyPerExample(logitsAdv, y), logitsAdv.shape[0]) as tf.Tensor1D),
  });
}
