import * as tf from '@tensorflow/tfjs';
import type { Mode } from '../core/model';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions, requireOnePooledPixel } from './architecture';
import { BatchNorm2d } from './layers/batch-norm';
import { Conv2d } from './layers/conv2d';
import { Linear } from './layers/dense';
import { avgPool2d, flattenLikeTorch } from './layers/pooling';
import type { TensorSlot } from './layers/slot';

/** Post-activation BasicBlock of the kuangliu CIFAR ResNet (docs/algorithms.md §3.1). */
class BasicBlock {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  /** `shortcut` = Sequential(conv1×1, BN) when the stride or the width changes; identity otherwise. */
  readonly shortcut: { conv: Conv2d; bn: BatchNorm2d } | null;

  constructor(prefix: string, inPlanes: number, planes: number, stride: number) {
    this.conv1 = new Conv2d(`${prefix}.conv1`, inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(`${prefix}.bn1`, planes);
    this.conv2 = new Conv2d(`${prefix}.conv2`, planes, planes, 3, { stride: 1, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(`${prefix}.bn2`, planes);
    this.shortcut =
      stride !== 1 || inPlanes !== planes
        ? {
            conv: new Conv2d(`${prefix}.shortcut.0`, inPlanes, planes, 1, { stride, bias: false }),
            bn: new BatchNorm2d(`${prefix}.shortcut.1`, planes),
          }
        : null;
  }

  slots(): TensorSlot[] {
    const own = [...this.conv1.slots(), ...this.bn1.slots(), ...this.conv2.slots(), ...this.bn2.slots()];
    return this.shortcut ? [...own, ...this.shortcut.conv.slots(), ...this.shortcut.bn.slots()] : own;
  }

  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor4D {
    const out = tf.relu(this.bn1.apply(this.conv1.apply(x), mode));
    const main = this.bn2.apply(this.conv2.apply(out), mode);
    const skip: tf.Tensor4D = this.shortcut ? this.shortcut.bn.apply(this.shortcut.conv.apply(x), mode) : x;
    return tf.relu(tf.add(main, skip)) as tf.Tensor4D;
  }

  outputSize(n: number): number {
    return this.conv1.outputSize(n);
  }
}

/**
 * `resnet18`: the authors' ResNet-18 (kuangliu CIFAR ResNet). conv3×3(C→64) → BN → ReLU → 4 stages of
 * 2 BasicBlocks (64/128/256/512, strides 1/2/2/2) → avg_pool2d(4) → Linear(512→K). PyTorch-default init.
 */
export function resnet18(opts: ArchitectureOptions): Architecture {
  checkArchitectureOptions('resnet18', opts);
  const [h, w, c] = opts.inputShape;
  const conv1 = new Conv2d('conv1', c, 64, 3, { stride: 1, padding: 1, bias: false });
  const bn1 = new BatchNorm2d('bn1', 64);
  const blocks: BasicBlock[] = [];
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, stage) => {
    const firstStride = stage === 0 ? 1 : 2;
    for (let i = 0; i < 2; i++) {
      blocks.push(new BasicBlock(`layer${stage + 1}.${i}`, inPlanes, planes, i === 0 ? firstStride : 1));
      inPlanes = planes;
    }
  });
  const finalSize = (n: number) => blocks.reduce((s, b) => b.outputSize(s), conv1.outputSize(n));
  requireOnePooledPixel(
    'resnet18',
    opts.inputShape,
    finalSize(h),
    finalSize(w),
    4,
    'use 25..56 pixels per side, e.g. 32×32 (CIFAR, SVHN) or 28×28',
  );
  const linear = new Linear('linear', 512, opts.numClasses);
  return {
    name: 'resnet18',
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots: [...conv1.slots(), ...bn1.slots(), ...blocks.flatMap((b) => b.slots()), ...linear.slots()],
    forward(x, mode) {
      let out = tf.relu(bn1.apply(conv1.apply(x), mode));
      for (const b of blocks) out = b.apply(out, mode);
      return linear.apply(flattenLikeTorch(avgPool2d(out, 4)));
    },
  };
}
