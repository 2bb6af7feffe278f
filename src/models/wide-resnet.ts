import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Mode } from '../core/model';
import { type Architecture, type ArchitectureOptions, checkArchitectureOptions, requireOnePooledPixel } from './architecture';
import { BatchNorm2d } from './layers/batch-norm';
import { Conv2d } from './layers/conv2d';
import { Linear } from './layers/dense';
import { avgPool2d, flattenLikeTorch } from './layers/pooling';
import type { TensorSlot } from './layers/slot';

/**
 * Pre-activation BasicBlock of the TRADES-style WideResNet (docs/algorithms.md §3.2), with its quirk (§12.14):
 * when in ≠ out, x itself is replaced by ReLU(bn1(x)) and the 1×1 shortcut consumes that activated x;
 * when in = out, the residual adds the raw x.
 */
class WideBasicBlock {
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;

  constructor(prefix: string, inPlanes: number, outPlanes: number, stride: number) {
    this.bn1 = new BatchNorm2d(`${prefix}.bn1`, inPlanes);
    this.conv1 = new Conv2d(`${prefix}.conv1`, inPlanes, outPlanes, 3, { stride, padding: 1, bias: false, init: 'wrn' });
    this.bn2 = new BatchNorm2d(`${prefix}.bn2`, outPlanes);
    this.conv2 = new Conv2d(`${prefix}.conv2`, outPlanes, outPlanes, 3, { stride: 1, padding: 1, bias: false, init: 'wrn' });
    // Only the channel count decides (equalInOut), not the stride, exactly as the reference.
    this.convShortcut =
      inPlanes !== outPlanes ? new Conv2d(`${prefix}.convShortcut`, inPlanes, outPlanes, 1, { stride, bias: false, init: 'wrn' }) : null;
  }

  slots(): TensorSlot[] {
    const own = [...this.bn1.slots(), ...this.conv1.slots(), ...this.bn2.slots(), ...this.conv2.slots()];
    return this.convShortcut ? [...own, ...this.convShortcut.slots()] : own;
  }

  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor4D {
    const activated = tf.relu(this.bn1.apply(x, mode));
    const out = this.conv2.apply(tf.relu(this.bn2.apply(this.conv1.apply(activated), mode)));
    return tf.add(this.convShortcut ? this.convShortcut.apply(activated) : x, out);
  }

  outputSize(n: number): number {
    return this.conv1.outputSize(n);
  }
}

/** Parses 'wrn-34-10' into depth 34, widen factor 10; null for other names. */
export function parseWrnName(name: string): { depth: number; widen: number } | null {
  const m = /^wrn-(\d+)-(\d+)$/.exec(name);
  return m ? { depth: Number(m[1]), widen: Number(m[2]) } : null;
}

/**
 * `wrn-D-K`: WideResNet of depth D (= 6n + 4) and widen factor K; dropout 0 as in every reference run.
 * conv3×3(C→16) → 3 groups of n blocks (16K, 32K, 64K; strides 1, 2, 2) → BN → ReLU → avg_pool2d(8) →
 * Linear(64K→classes). Init: conv N(0, 2/(k·k·out)), BN γ=1 β=0, Linear bias 0, Linear weight PyTorch default.
 */
export function wideResnet(depth: number, widen: number, opts: ArchitectureOptions): Architecture {
  const name = `wrn-${depth}-${widen}`;
  checkArchitectureOptions(name, opts);
  if (!Number.isInteger(depth) || depth < 10 || (depth - 4) % 6 !== 0) {
    throw new AtflowError('ARGUMENT', `${name}: WideResNet depth must be 6n+4 with n ≥ 1 (10, 16, 22, 28, 34, ...), got ${depth}`, {
      depth,
    });
  }
  if (!Number.isInteger(widen) || widen < 1) {
    throw new AtflowError('ARGUMENT', `${name}: widen factor must be a positive integer, got ${widen}`, { widen });
  }
  const [h, w, c] = opts.inputShape;
  const n = (depth - 4) / 6;
  const channels = [16, 16 * widen, 32 * widen, 64 * widen];
  const conv1 = new Conv2d('conv1', c, channels[0], 3, { stride: 1, padding: 1, bias: false, init: 'wrn' });
  const blocks: WideBasicBlock[] = [];
  [1, 2, 2].forEach((stride, g) => {
    for (let i = 0; i < n; i++) {
      const inPlanes = i === 0 ? channels[g] : channels[g + 1];
      blocks.push(new WideBasicBlock(`block${g + 1}.layer.${i}`, inPlanes, channels[g + 1], i === 0 ? stride : 1));
    }
  });
  const finalSize = (s: number) => blocks.reduce((acc, b) => b.outputSize(acc), conv1.outputSize(s));
  requireOnePooledPixel(name, opts.inputShape, finalSize(h), finalSize(w), 8, 'use 29..60 pixels per side, e.g. 32×32 (CIFAR, SVHN)');
  const bn1 = new BatchNorm2d('bn1', channels[3]);
  const fc = new Linear('fc', channels[3], opts.numClasses, { biasInit: 'zeros' });
  return {
    name,
    numClasses: opts.numClasses,
    inputShape: [h, w, c],
    slots: [...conv1.slots(), ...blocks.flatMap((b) => b.slots()), ...bn1.slots(), ...fc.slots()],
    forward(x, mode) {
      let out = conv1.apply(x);
      for (const b of blocks) out = b.apply(out, mode);
      out = tf.relu(bn1.apply(out, mode));
      return fc.apply(flattenLikeTorch(avgPool2d(out, 8)));
    },
  };
}
