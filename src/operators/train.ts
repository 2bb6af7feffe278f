import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { disposeBatch, trainedBatch, type AttackedBatch, type TrainedBatch } from '../core/batch';
import type { Model } from '../core/model';
import type { Sgd } from '../algorithms/optim/sgd';
import type { LrSchedule } from '../algorithms/schedules/lr-schedule';
import type { TeTensors, Trainer } from '../algorithms/trainers/types';
import { applyUpdate, gradientHalf, stepRecords, type GradientHalf } from '../algorithms/train-step';

export interface TrainOperatorOptions {
  readonly model: Model;
  readonly trainer: Trainer;
  readonly optimizer: Sgd;
  /** Learning rate per 1-based epoch. */
  readonly lr: LrSchedule;
}

/**
 * One optimisation step per batch, as an operator: AttackedBatch → TrainedBatch.
 * tf.variableGrads over the trainer's train-mode loss, the squared global gradient norm Σ‖∇W‖²_F over
 * all parameters before weight decay (docs/algorithms.md §8.2), then SGD. `train` is the last consumer of the
 * batch's `x` and `xAdv` and disposes them; a TrainedBatch holds no tensors.
 *
 * Train-phase example columns: adversarial ones from the train-mode f(x′); clean ones from the
 * train-mode f(x) where the trainer has that forward (standard, TRADES, MART), else (PGD-AT) from the
 * eval-mode f(x) computed before the attack: a train-mode forward PGD-AT does not make would move BN.
 * A step with a non-finite loss or gradient is rejected (NON_FINITE) with nothing changed: neither
 * the weights nor the BatchNorm running statistics the forward already updated. The work is the train
 * step's second half and update (train-step.ts), shared with the data-parallel path.
 */
export function train(options: TrainOperatorOptions): OperatorFunction<AttackedBatch, TrainedBatch> {
  const { model, trainer, optimizer, lr: lrSchedule } = options;
  return map((batch) => {
    const t0 = performance.now();
    const B = batch.indices.length;
    const K = batch.numClasses;
    let y: tf.Tensor1D | undefined;
    let te: TeTensors | null = null;
    let g: GradientHalf | undefined;
    const buffersBefore: tf.Tensor[] = [];
    try {
      y = tf.tensor1d(batch.labelsUsed, 'int32');
      if (batch.te) te = { weight: batch.te.weight, target: tf.tensor2d(batch.te.target, [B, K]) };
      // BN running statistics move in the train-mode forward, before the finiteness check: keep the
      // values from before it (clones share the data; assign swaps it) to roll them back with a rejected step
      buffersBefore.push(...model.buffers.map((b) => b.variable.clone()));
      const half = gradientHalf(model, trainer, batch.x, batch.xAdv, y, te);
      g = half;
      const loss = half.value.dataSync()[0];
      const lr = lrSchedule(batch.epoch);
      const gradNormSq = applyUpdate({
        optimizer,
        grads: half.grads,
        loss,
        lr,
        what: `train: ${trainer.name}`,
        epoch: batch.epoch,
        step: batch.step,
        indices: batch.indices,
        labels: batch.labelsUsed,
        numClasses: K,
        perExample: () => [half.logitsAdv, half.logitsNat, half.tePenalty].map((t) => (t ? (t.dataSync() as Float32Array) : null)),
        onReject: () => model.buffers.forEach((b, i) => b.variable.assign(buffersBefore[i])),
      });
      const { columns, record } = stepRecords({
        epoch: batch.epoch,
        step: batch.step,
        indices: batch.indices,
        labelsTrue: batch.labelsTrue,
        labelsUsed: batch.labelsUsed,
        numClasses: K,
        logitsClean: half.logitsNat ? (half.logitsNat.dataSync() as Float32Array) : batch.logitsNatEval,
        logitsAdv: half.logitsAdv.dataSync() as Float32Array,
        tePenalty: half.tePenalty ? (half.tePenalty.dataSync().slice() as Float32Array) : null,
        te: batch.te,
        loss,
        gradNormSq,
        lr,
        ms: batch.attackMs + (performance.now() - t0),
      });
      return trainedBatch(batch, columns, record);
    } finally {
      g?.dispose();
      tf.dispose(buffersBefore);
      y?.dispose();
      te?.target.dispose();
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
    }
  });
}

// shared with the data-parallel step (train-step.ts)
export { nonFiniteRows, nonFiniteStepError } from '../algorithms/train-step';
