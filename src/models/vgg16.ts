import * as tf from '@tensorflow/tfjs';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions, unsupportedInput } from './architecture';
import { BatchNorm2d } from './layers/batch-norm';
import { Conv2d } from './layers/conv2d';
import { Linear } from './layers/dense';
import { flattenLikeTorch, maxPool2d, pooledSize } from './layers/pooling';
import type { TensorSlot } from './layers/slot';

const VGG16_CONFIG: readonly (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

/**
 * `vgg16`: the authors' VGG-16 (kuangliu CIFAR VGG, docs/algorithms.md §3.3). Each number is conv3×3(pad 1,
 * bias) → BN → ReLU, each M a 2×2 max-pool, then a no-op AvgPool(1,1), flatten (512) → Linear(512→K).
 * The reference hard-codes K = 10 (§12.10); here K is numClasses, and K = 10 gives the reference exactly.
 * state_dict names follow the reference's nn.Sequential indices: features.<i>.{weight,bias,...}, classifier.*.
 */
export function vgg16(opts: ArchitectureOptions): Architecture {
  checkArchitectureOptions('vgg16', opts);
  const [h, w, c] = opts.inputShape;
  type Step = { conv: Conv2d; bn: BatchNorm2d } | 'M';
  const steps: Step[] = [];
  let index = 0;
  let inChannels = c;
  let fh = h;
  let fw = w;
  for (const item of VGG16_CONFIG) {
    if (item === 'M') {
      steps.push('M');
      fh = pooledSize(fh, 2);
      fw = pooledSize(fw, 2);
      index += 1;
    } else {
      steps.push({
        conv: new Conv2d(`features.${index}`, inChannels, item, 3, { padding: 1, bias: true }),
        bn: new BatchNorm2d(`features.${index + 1}`, item),
      });
      inChannels = item;
      index += 3; // Conv2d, BatchNorm2d, ReLU
    }
  }
  if (fh !== 1 || fw !== 1) {
    throw unsupportedInput(
      'vgg16',
      opts.inputShape,
      `five 2×2 max-pools leave a ${fh}×${fw} map and the classifier takes exactly 512 features (1×1×512)`,
      'use 32..63 pixels per side, e.g. 32×32 (CIFAR, SVHN)',
    );
  }
  const classifier = new Linear('classifier', 512, opts.numClasses);
  const slots: TensorSlot[] = [];
  for (const s of steps) if (s !== 'M') slots.push(...s.conv.slots(), ...s.bn.slots());
  slots.push(...classifier.slots());
  return {
    name: 'vgg16',
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots,
    forward(x, mode) {
      let out = x;
      for (const s of steps) out = s === 'M' ? maxPool2d(out, 2) : tf.relu(s.bn.apply(s.conv.apply(out), mode));
      // AvgPool2d(kernel_size=1, stride=1) is the identity.
      return classifier.apply(flattenLikeTorch(out));
    },
  };
}
