import * as tf from '@tensorflow/tfjs';
import { makeSlot, type TensorSlot, variableOf } from './slot';
import { type InitScheme, pytorchDefaultBias, pytorchDefaultWeight, wrnConvWeight } from './init';

export interface Conv2dOptions {
  readonly stride?: number;
  /** Zero padding on every side, as PyTorch's `padding=` (not TensorFlow's 'same', which pads stride-2 convs asymmetrically). */
  readonly padding?: number;
  readonly bias?: boolean;
  readonly init?: InitScheme;
}

/** nn.Conv2d(in, out, kernel, stride, padding, bias) with square kernels; weights stored HWIO. */
export class Conv2d {
  readonly weight: TensorSlot;
  readonly bias: TensorSlot | null;
  readonly stride: number;
  readonly padding: number;

  constructor(
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    opts: Conv2dOptions = {},
  ) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const fanIn = inChannels * kernel * kernel;
    const init = opts.init ?? 'pytorch';
    this.weight = makeSlot(
      `${name}.weight`,
      'parameter',
      [outChannels, inChannels, kernel, kernel],
      'conv',
      init === 'wrn' ? wrnConvWeight(kernel, kernel, outChannels) : pytorchDefaultWeight(fanIn),
    );
    this.bias = (opts.bias ?? true) ? makeSlot(`${name}.bias`, 'parameter', [outChannels], 'plain', pytorchDefaultBias(fanIn)) : null;
  }

  /** state_dict order: weight, bias. */
  slots(): TensorSlot[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** PyTorch's output size: floor((n + 2p − k) / s) + 1. */
  outputSize(n: number): number {
    return Math.floor((n + 2 * this.padding - this.kernel) / this.stride) + 1;
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    // A number pads symmetrically, exactly like PyTorch (and the wasm kernel receives explicit pads).
    const pad = this.padding === 0 ? 'valid' : this.padding;
    const y = tf.conv2d(x, variableOf(this.weight) as tf.Tensor4D, this.stride, pad);
    return this.bias ? tf.add(y, variableOf(this.bias)) : y;
  }
}
