import * as tf from '@tensorflow/tfjs';
import { crossEntropyPerExample } from './ce';
import { oneHotFloat, pick, topClassMasks } from './top-classes';
import { checkLabels, checkSameShape } from './validate';

/**
 * MART (Wang et al., ICLR 2020), per example, as the authors' mart_loss (YisenWang/MART, mart.py):
 *   p' = softmax(f(x')), p = softmax(f(x)),
 *   ỹ_i = the most likely class of p'_i other than y_i (the top class if it is not y_i, else the second),
 *   BCE_i  = CE(f(x'_i), y_i) − log(1.0001 − p'_{i,ỹ_i} + 1e−12)
 *   KL_i   = Σ_k p_ik·(log p_ik − log(p'_ik + 1e−12))
 *   MART_i = BCE_i + β·KL_i·(1.0000001 − p_{i,y_i}).
 * The constants 1.0001, 1e−12 and 1.0000001 are the reference code's. Gradients flow through both p and p'
 * (nothing is detached there either). log p_ik is log_softmax(f(x)) so that p_ik = 0 contributes 0, as
 * KLDivLoss does for a zero target.
 */
export function martLossPerExample(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D, labels: tf.Tensor1D, beta: number): tf.Tensor1D {
  checkLabels('martLoss', logitsAdv, labels);
  checkSameShape('martLoss', 'logitsNat', logitsNat, 'logitsAdv', logitsAdv);
  const k = logitsAdv.shape[1];
  return tf.tidy(() => {
    const advProbs = tf.softmax(logitsAdv);
    // ỹ: the top class of p' unless it is y, else the second (the ranking carries no gradient)
    const [first, second] = topClassMasks(advProbs, 2);
    const labelMask = oneHotFloat(labels, k);
    const topIsLabel = tf.reshape(pick(first, labelMask), [-1, 1]);
    const otherMask = tf.add(tf.mul(second, topIsLabel), tf.mul(first, tf.sub(1, topIsLabel))) as tf.Tensor2D;
    const pOther = pick(otherMask, advProbs);
    const boosted = tf.sub(crossEntropyPerExample(logitsAdv, labels), tf.log(tf.add(tf.sub(1.0001, pOther), 1e-12)));

    const logpNat = tf.logSoftmax(logitsNat);
    const natProbs = tf.exp(logpNat);
    const kl = tf.sum(tf.mul(natProbs, tf.sub(logpNat, tf.log(tf.add(advProbs, 1e-12)))), 1);
    const trueProbs = pick(labelMask, natProbs);
    return tf.add(boosted, tf.mul(tf.mul(kl, tf.sub(1.0000001, trueProbs)), beta)) as tf.Tensor1D;
  });
}

/** The MART training loss: mean over the batch of martLossPerExample (the reference's loss_adv + β·loss_robust). */
export function martLoss(logitsNat: tf.Tensor2D, logitsAdv: tf.Tensor2D, labels: tf.Tensor1D, beta: number): tf.Scalar {
  return tf.tidy(() => tf.mean(martLossPerExample(logitsNat, logitsAdv, labels, beta)) as tf.Scalar);
}
