import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import type { AttackObjective } from './types';

/**
 * ∇_{x'} J(f(x'), y) with the model in eval mode. tf.grad differentiates w.r.t. x' only: the tape is
 * pruned to the path from x' to J, so no weight gradients are computed. Call inside tf.tidy.
 */
export function inputGradient(model: Model, xAdv: tf.Tensor4D, y: tf.Tensor1D, objective: AttackObjective): tf.Tensor4D {
  const g = tf.grad((xx: tf.Tensor) => objective(model.apply(xx as tf.Tensor4D, 'eval'), y));
  return g(xAdv) as tf.Tensor4D;
}

/** As inputGradient, also returning the objective's value at x' (for attacks that track the loss). */
export function inputValueAndGradient(
  model: Model,
  xAdv: tf.Tensor4D,
  y: tf.Tensor1D,
  objective: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D) => tf.Scalar,
): { value: tf.Scalar; grad: tf.Tensor4D } {
  const vg = tf.valueAndGrad((xx: tf.Tensor) => objective(model.apply(xx as tf.Tensor4D, 'eval'), y));
  const { value, grad } = vg(xAdv);
  return { value, grad: grad as tf.Tensor4D };
}
