import * as tf from '@tensorflow/tfjs';
import { batchNormTrain } from '../../backend/batch-norm-train';
import { AtflowError } from '../../core/errors';
import type { Mode } from '../../core/model';
import { batchStatsListener } from '../../core/batch-stats';
import { makeSlot, type TensorSlot, variableOf } from './slot';
import { ONES, ZEROS } from './init';

/** PyTorch's BatchNorm2d defaults (docs/algorithms.md §3.1). */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/**
 * nn.BatchNorm2d(C) written with plain ops.
 * train: normalise with the batch mean and the biased variance over (N, H, W); then
 *        running_mean ← (1−m)·running_mean + m·mean, running_var ← (1−m)·running_var + m·var·n/(n−1)
 *        (PyTorch keeps the *unbiased* variance), num_batches_tracked += 1.
 * eval:  normalise with running_mean / running_var.
 */
export class BatchNorm2d {
  readonly weight: TensorSlot;
  readonly bias: TensorSlot;
  readonly runningMean: TensorSlot;
  readonly runningVar: TensorSlot;
  readonly numBatchesTracked: TensorSlot;

  constructor(
    readonly name: string,
    readonly channels: number,
  ) {
    this.weight = makeSlot(`${name}.weight`, 'parameter', [channels], 'plain', ONES);
    this.bias = makeSlot(`${name}.bias`, 'parameter', [channels], 'plain', ZEROS);
    this.runningMean = makeSlot(`${name}.running_mean`, 'buffer', [channels], 'plain', ZEROS);
    this.runningVar = makeSlot(`${name}.running_var`, 'buffer', [channels], 'plain', ONES);
    this.numBatchesTracked = makeSlot(`${name}.num_batches_tracked`, 'buffer', [], 'plain', ZEROS, 'int32');
  }

  /** state_dict order: parameters (weight, bias), then buffers. */
  slots(): TensorSlot[] {
    return [this.weight, this.bias, this.runningMean, this.runningVar, this.numBatchesTracked];
  }

  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor4D {
    const gamma = variableOf(this.weight) as tf.Tensor1D;
    const beta = variableOf(this.bias) as tf.Tensor1D;
    if (mode === 'eval') {
      // y = x·s + (β − μ·s), s = γ / √(σ² + ε): two ops on x. tfjs-node's FusedBatchNorm kernel cost as much as
      // the convolutions of PreAct-ResNet-18 at batch 8 (2.5 ms a call, 53 of 113 ms of a forward pass).
      return tf.tidy(() => {
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(variableOf(this.runningVar), BN_EPS)));
        const shift = tf.sub(beta, tf.mul(variableOf(this.runningMean), scale));
        return tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
      });
    }
    const [n, h, w] = x.shape;
    const count = n * h * w;
    if (count <= 1) {
      // PyTorch refuses too: the unbiased variance of one value is undefined.
      throw new AtflowError(
        'SHAPE',
        `${this.name}: BatchNorm in train mode needs more than 1 value per channel, got input ${JSON.stringify(x.shape)}`,
        {
          name: this.name,
          shape: x.shape,
        },
      );
    }
    // Gradients flow through the batch statistics (fused on `tensorflow`, see batchNormTrain).
    const { y, mean, variance } = batchNormTrain(x, gamma, beta, BN_EPS);
    this.updateRunningStats(mean, variance, count);
    const listener = batchStatsListener();
    if (listener)
      listener({
        layer: this.name,
        mean: (mean.dataSync() as Float32Array).slice(),
        biasedVariance: (variance.dataSync() as Float32Array).slice(),
        count,
      });
    return y;
  }

  private updateRunningStats(mean: tf.Tensor, biasedVariance: tf.Tensor, count: number): void {
    const runningMean = variableOf(this.runningMean);
    const runningVar = variableOf(this.runningVar);
    const tracked = variableOf(this.numBatchesTracked);
    tf.tidy(() => {
      const m = BN_MOMENTUM;
      const unbiased = tf.mul(biasedVariance, count / (count - 1));
      runningMean.assign(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)));
      runningVar.assign(tf.add(tf.mul(runningVar, 1 - m), tf.mul(unbiased, m)));
      tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    });
  }
}
