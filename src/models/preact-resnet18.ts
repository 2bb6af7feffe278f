import * as tf from '@tensorflow/tfjs';
import type { Mode } from '../core/model';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions, requireOnePooledPixel } from './architecture';
import { BatchNorm2d } from './layers/batch-norm';
import { Conv2d } from './layers/conv2d';
import { Linear } from './layers/dense';
import { avgPool2d, flattenLikeTorch } from './layers/pooling';
import type { TensorSlot } from './layers/slot';

/**
 * PreActBlock of Rice et al. (locuslab/robust_overfitting, preactresnet.py):
 * out = ReLU(bn1(x)); shortcut = conv1×1(out) if the stride or width changes, else x;
 * out = conv2(ReLU(bn2(conv1(out)))) + shortcut. The shortcut conv sees the *activated* input, and has no BN.
 */
class PreActBlock {
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly shortcut: Conv2d | null;

  constructor(prefix: string, inPlanes: number, planes: number, stride: number) {
    this.bn1 = new BatchNorm2d(`${prefix}.bn1`, inPlanes);
    this.conv1 = new Conv2d(`${prefix}.conv1`, inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(`${prefix}.bn2`, planes);
    this.conv2 = new Conv2d(`${prefix}.conv2`, planes, planes, 3, { stride: 1, padding: 1, bias: false });
    this.shortcut =
      stride !== 1 || inPlanes !== planes ? new Conv2d(`${prefix}.shortcut.0`, inPlanes, planes, 1, { stride, bias: false }) : null;
  }

  slots(): TensorSlot[] {
    const own = [...this.bn1.slots(), ...this.conv1.slots(), ...this.bn2.slots(), ...this.conv2.slots()];
    return this.shortcut ? [...own, ...this.shortcut.slots()] : own;
  }

  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor4D {
    const out = tf.relu(this.bn1.apply(x, mode));
    const skip = this.shortcut ? this.shortcut.apply(out) : x;
    const main = this.conv2.apply(tf.relu(this.bn2.apply(this.conv1.apply(out), mode)));
    return tf.add(main, skip);
  }

  outputSize(n: number): number {
    return this.conv1.outputSize(n);
  }
}

/**
 * `preact-resnet18`: Rice et al.'s PreActResNet18. conv3×3(C→64) → 4 stages of 2 PreActBlocks
 * (64/128/256/512, strides 1/2/2/2) → BN → ReLU → avg_pool2d(4) → Linear(512→K). PyTorch-default init.
 */
export function preactResnet18(opts: ArchitectureOptions): Architecture {
  checkArchitectureOptions('preact-resnet18', opts);
  const [h, w, c] = opts.inputShape;
  const conv1 = new Conv2d('conv1', c, 64, 3, { stride: 1, padding: 1, bias: false });
  const blocks: PreActBlock[] = [];
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, stage) => {
    const firstStride = stage === 0 ? 1 : 2;
    for (let i = 0; i < 2; i++) {
      blocks.push(new PreActBlock(`layer${stage + 1}.${i}`, inPlanes, planes, i === 0 ? firstStride : 1));
      inPlanes = planes;
    }
  });
  const finalSize = (n: number) => blocks.reduce((s, b) => b.outputSize(s), conv1.outputSize(n));
  requireOnePooledPixel(
    'preact-resnet18',
    opts.inputShape,
    finalSize(h),
    finalSize(w),
    4,
    'use 25..56 pixels per side, e.g. 32×32 (CIFAR, SVHN) or 28×28',
  );
  const bn = new BatchNorm2d('bn', 512);
  const linear = new Linear('linear', 512, opts.numClasses);
  return {
    name: 'preact-resnet18',
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots: [...conv1.slots(), ...blocks.flatMap((b) => b.slots()), ...bn.slots(), ...linear.slots()],
    forward(x, mode) {
      let out = conv1.apply(x);
      for (const b of blocks) out = b.apply(out, mode);
      out = tf.relu(bn.apply(out, mode));
      return linear.apply(flattenLikeTorch(avgPool2d(out, 4)));
    },
  };
}
