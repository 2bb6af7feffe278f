import * as tf from '@tensorflow/tfjs';
import { makeSlot, type TensorSlot, variableOf } from './slot';
import { pytorchDefaultBias, pytorchDefaultWeight, ZEROS } from './init';

export interface LinearOptions {
  /** 'zeros': the WRN rule (bias zeroed, weight left at the PyTorch default). */
  readonly biasInit?: 'pytorch' | 'zeros';
}

/** nn.Linear(in, out): y = x·Wᵀ + b; the weight is stored [in, out] in tfjs and [out, in] in files. */
export class Linear {
  readonly weight: TensorSlot;
  readonly bias: TensorSlot;

  constructor(
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    this.weight = makeSlot(`${name}.weight`, 'parameter', [outFeatures, inFeatures], 'dense', pytorchDefaultWeight(inFeatures));
    this.bias = makeSlot(
      `${name}.bias`,
      'parameter',
      [outFeatures],
      'plain',
      opts.biasInit === 'zeros' ? ZEROS : pytorchDefaultBias(inFeatures),
    );
  }

  slots(): TensorSlot[] {
    return [this.weight, this.bias];
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(x, variableOf(this.weight) as tf.Tensor2D), variableOf(this.bias));
  }
}
