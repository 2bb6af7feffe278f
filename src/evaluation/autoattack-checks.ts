import * as tf from '@tensorflow/tfjs';
import type { Model } from '../core/model';
import { crossEntropyPerExample } from '../algorithms/objectives/ce';

/**
 * AutoAttack's checks on the kind of model it evaluates (checks.py), as warnings (never errors), run on
 * one batch before the attacks:
 *  - randomness: five forward passes of the same batch must agree (outputs normalised to unit ℓ2, max
 *    difference ≤ 1e−4, same number correct); else the model looks randomised: use the `rand` version;
 *  - softmax output: outputs in [0, 1] summing to 1 look like probabilities, not logits (DLR and the
 *    margins then mean something else);
 *  - dynamic: AutoAttack traces gradient calls inside the forward pass; a tfjs Model cannot hide such
 *    calls, so the check here is what such defences do: a forward pass in eval mode changes the model's
 *    own variables (test-time adaptation);
 *  - zero gradients: examples whose input gradient of the loss is exactly 0 (gradient masking).
 */
export function autoAttackChecks(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, randVersion: boolean): string[] {
  const warnings: string[] = [];
  const n = x.shape[0];
  if (n === 0) return warnings;
  const snapshot = () => [...model.parameters, ...model.buffers].map((v) => v.variable.dataSync().slice());
  const before = snapshot();
  const outputs: Float32Array[] = [];
  const correct: number[] = [];
  for (let r = 0; r < 5; r++) {
    const [o, c] = tf.tidy(() => {
      const logits = model.apply(x, 'eval');
      const norms = tf.add(tf.norm(logits, 2, 1, true), 1e-10);
      return [tf.div(logits, norms).dataSync() as Float32Array, tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')).dataSync()[0]];
    });
    outputs.push(o);
    correct.push(c);
  }
  const after = snapshot();
  if (before.some((b, i) => b.some((v, j) => v !== after[i][j]))) {
    warnings.push(
      'the model changes its own variables during an eval-mode forward pass: ' +
        'it seems to be a dynamic defence, and the AutoAttack evaluation might ' +
        'be insufficient (AutoAttack check_dynamic)',
    );
  }
  if (!randVersion) {
    const k = outputs[0].length / n;
    let maxDiff = 0;
    for (let a = 0; a < 5; a++)
      for (let b = a + 1; b < 5; b++)
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += (outputs[a][i * k + j] - outputs[b][i * k + j]) ** 2;
          maxDiff = Math.max(maxDiff, Math.sqrt(s));
        }
    if (maxDiff > 1e-4 || correct.some((c) => c !== correct[0])) {
      warnings.push(
        `repeated forward passes of the same batch differ (max normalised ` +
          `difference ${maxDiff.toExponential(2)}): it seems to be a randomised ` +
          `defence; use --attacks rand (EoT) (AutoAttack check_randomized)`,
      );
    }
  }
  const probs = tf.tidy(() => {
    const logits = model.apply(x, 'eval');
    const rowSums = tf.abs(tf.sub(tf.sum(logits, 1), 1));
    return [tf.max(logits).dataSync()[0], tf.min(logits).dataSync()[0], tf.max(rowSums).dataSync()[0]];
  });
  if (probs[0] < 1 + 1e-5 && probs[1] > -1e-5 && probs[2] < 1e-5) {
    warnings.push(
      'the model outputs look like a probability distribution (in [0, 1], ' +
        'summing to 1): AutoAttack needs the logits (AutoAttack ' +
        'check_range_output)',
    );
  }
  const zero = tf.tidy(() => {
    const g = tf.grad((xx: tf.Tensor) => tf.sum(crossEntropyPerExample(model.apply(xx as tf.Tensor4D, 'eval'), y)))(x);
    return tf.sum(tf.cast(tf.equal(tf.sum(tf.abs(tf.reshape(g, [n, -1])), 1), 0), 'int32')).dataSync()[0];
  });
  if (zero > 0) {
    warnings.push(
      `${zero} of ${n} examples have an exactly zero input gradient: ` +
        `gradient-based attacks may be unreliable on them (AutoAttack ` +
        `check_zero_gradients)`,
    );
  }
  return warnings;
}
