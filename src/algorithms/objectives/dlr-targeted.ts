import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { oneHotFloat, pick, topClassMasks } from './top-classes';
import { checkLabels } from './validate';

/** The targeted DLR divides by z_π1 − (z_π3 + z_π4)/2, so it needs at least four classes. */
export function checkTargetedDlrClasses(where: string, numClasses: number): void {
  if (numClasses < 4) {
    throw new AtflowError(
      'ARGUMENT',
      `${where}: the targeted DLR loss (APGD-T) needs at least 4 classes (it ` +
        `divides by z_π1 − (z_π3 + z_π4)/2), but the model has ${numClasses}; ` +
        `use APGD-CE ('apgd-ce')${numClasses >= 3 ? " or APGD-DLR ('apgd-dlr')" : ''} ` +
        `instead`,
      { where, numClasses },
    );
  }
}

/**
 * The targeted Difference of Logits Ratio of Croce & Hein (2020), per example:
 *   DLR-T_i = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e−12),
 * with t the target class and z_π1 ≥ z_π2 ≥ ... the sorted logits (AutoAttack's dlr_loss_targeted).
 * APGD-T evaluates it at every iterate, mostly on small batches where each op's dispatch costs more than
 * its arithmetic, so it is one custom-gradient op: z_π1, z_π3, z_π4 from one top-4 (ties: the lower index
 * first, as the rank masks of dlr.ts), and ∂/∂z written out with the very float32 operations tfjs's
 * autodiff performs through the masked picks (neg → div → sub / add / mul 0.5), so values and gradients
 * are bit for bit those of the composed version (dlrTargetedLossComposed, kept for the test).
 */
export function dlrTargetedLossPerExample(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  checkLabels('dlrTargetedLoss', logits, labels);
  checkLabels('dlrTargetedLoss', logits, targets);
  const k = logits.shape[1];
  checkTargetedDlrClasses('dlrTargetedLoss', k);
  return tf.tidy(() => {
    const ey = oneHotFloat(labels, k);
    const et = oneHotFloat(targets, k);
    const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const z2 = args[0] as tf.Tensor2D;
      const save = args[1] as tf.GradSaveFunc;
      const { values, indices } = tf.topk(z2, 4);
      const [z1, , z3, z4] = tf.split(values, 4, 1).map((v) => tf.reshape(v, [-1]));
      const diff = tf.sub(pick(ey, z2), pick(et, z2));
      const denominator = tf.add(tf.sub(z1, tf.mul(tf.add(z3, z4), 0.5)), 1e-12);
      save([diff, denominator, indices, ey, et]); // saved: the gradient runs after this tidy ends
      return {
        value: tf.neg(tf.div(diff, denominator)),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [a, b, top, my, mt] = saved;
          const d = tf.neg(dy);
          const dDiff = tf.div(d, b); // ∂/∂z_y; ∂/∂z_t is its negation
          const dDen = tf.neg(tf.div(tf.mul(d, a), tf.square(b))); // ∂/∂z_π1
          const dPair = tf.mul(tf.neg(dDen), 0.5); // ∂/∂z_π3 = ∂/∂z_π4
          const [i1, , i3, i4] = tf.split(top, 4, 1).map((v) => oneHotFloat(tf.reshape(v, [-1]) as tf.Tensor1D, k));
          const col = (v: tf.Tensor) => tf.reshape(v, [-1, 1]);
          return tf.addN([
            tf.mul(col(dDiff), my),
            tf.mul(col(tf.neg(dDiff)), mt),
            tf.mul(col(dDen), i1),
            tf.mul(col(dPair), tf.add(i3, i4)),
          ]);
        },
      };
    });
    return loss(logits) as tf.Tensor1D;
  });
}

/** The same loss composed from rank masks and autodiff (the definition the custom gradient is tested against). */
export function dlrTargetedLossComposed(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
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
