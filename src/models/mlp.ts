import * as tf from '@tensorflow/tfjs';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions } from './architecture';
import { Linear } from './layers/dense';
import { flattenLikeTorch } from './layers/pooling';

export const MLP_HIDDEN = 256;

/**
 * `mlp`: flatten (PyTorch's C,H,W order) → fc1 (H·W·C→256) → ReLU → fc2 (256→256) → ReLU → fc3 (256→K).
 * Not in the authors' code (docs/algorithms.md §3.4); a small baseline for MNIST-scale runs. PyTorch-default init.
 */
export function mlp(opts: ArchitectureOptions): Architecture {
  checkArchitectureOptions('mlp', opts);
  const [h, w, c] = opts.inputShape;
  const fc1 = new Linear('fc1', h * w * c, MLP_HIDDEN);
  const fc2 = new Linear('fc2', MLP_HIDDEN, MLP_HIDDEN);
  const fc3 = new Linear('fc3', MLP_HIDDEN, opts.numClasses);
  return {
    name: 'mlp',
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots: [...fc1.slots(), ...fc2.slots(), ...fc3.slots()],
    forward(x) {
      const h1 = tf.relu(fc1.apply(flattenLikeTorch(x)));
      const h2 = tf.relu(fc2.apply(h1));
      return fc3.apply(h2);
    },
  };
}
