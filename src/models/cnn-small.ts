import * as tf from '@tensorflow/tfjs';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions, unsupportedInput } from './architecture';
import { Conv2d } from './layers/conv2d';
import { Linear } from './layers/dense';
import { flattenLikeTorch, maxPool2d, pooledSize } from './layers/pooling';

/**
 * `cnn-small`, the MNIST CNN of the engine benchmark:
 * conv1 3×3 (C→32, padding 0, bias) → ReLU → max_pool 2 → conv2 3×3 (32→64, padding 0, bias) → ReLU →
 * max_pool 2 → flatten (C,H,W order) → fc1 (→128) → ReLU → fc2 (128→K). PyTorch-default init.
 * 28×28×1: 28 → 26 → 13 → 11 → 5, so fc1 takes 64·5·5 = 1600 features.
 */
export function cnnSmall(opts: ArchitectureOptions): Architecture {
  checkArchitectureOptions('cnn-small', opts);
  const [h, w, c] = opts.inputShape;
  const conv1 = new Conv2d('conv1', c, 32, 3);
  const conv2 = new Conv2d('conv2', 32, 64, 3);
  const side = (n: number) => pooledSize(conv2.outputSize(pooledSize(conv1.outputSize(n), 2)), 2);
  const fh = side(h);
  const fw = side(w);
  if (fh < 1 || fw < 1) {
    throw unsupportedInput(
      'cnn-small',
      opts.inputShape,
      'two 3×3 convolutions and two 2×2 poolings leave no pixels',
      'use inputs of at least 10×10 (MNIST is 28×28×1)',
    );
  }
  const fc1 = new Linear('fc1', 64 * fh * fw, 128);
  const fc2 = new Linear('fc2', 128, opts.numClasses);
  return {
    name: 'cnn-small',
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots: [...conv1.slots(), ...conv2.slots(), ...fc1.slots(), ...fc2.slots()],
    forward(x) {
      const a1 = maxPool2d(tf.relu(conv1.apply(x)), 2);
      const a2 = maxPool2d(tf.relu(conv2.apply(a1)), 2);
      return fc2.apply(tf.relu(fc1.apply(flattenLikeTorch(a2))));
    },
  };
}
