import type * as tf from '@tensorflow/tfjs';

/** BatchNorm mode: 'train' uses batch statistics and updates running ones; 'eval' uses running ones (docs/algorithms.md §1). */
export type Mode = 'train' | 'eval';

/** A variable with its PyTorch state_dict name (e.g. 'layer1.0.conv1.weight'). */
export interface NamedVariable {
  readonly name: string;
  readonly variable: tf.Variable;
}

/**
 * A classifier written with plain tf ops (no tf.layers), so that a gradient w.r.t. the input does not
 * also compute weight gradients. Inputs are NHWC floats in [0, 1], with no normalisation.
 * Tensors are stored in tfjs layouts (conv HWIO, dense [in, out]); checkpoint I/O converts to PyTorch's.
 */
export interface Model {
  /** Registry name, e.g. 'cnn-small', 'resnet18', 'wrn-34-10'. */
  readonly name: string;
  readonly numClasses: number;
  /** [H, W, C] of one input image. */
  readonly inputShape: readonly [number, number, number];
  /** Logits [B, K]. In 'train' mode BatchNorm running statistics are updated as a side effect. */
  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor2D;
  /** Learnable parameters, in PyTorch state_dict order. */
  readonly parameters: readonly NamedVariable[];
  /** Non-learnable state (BatchNorm running_mean / running_var / num_batches_tracked), state_dict order. */
  readonly buffers: readonly NamedVariable[];
  /** Frees every variable of the model. */
  dispose(): void;
}

export function countParameters(model: Model): number {
  return model.parameters.reduce((n, p) => n + p.variable.size, 0);
}
