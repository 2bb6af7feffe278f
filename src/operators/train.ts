import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import { disposeBatch, trainedBatch, type AttackedBatch, type TrainedBatch } from '../core/batch';
import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import type { ExampleColumns, StepRecord } from '../core/records';
import type { Sgd } from './optim/sgd';
import type { LrSchedule } from './schedules/lr-schedule';
import { exampleColumns, logitStats } from './trainers/logit-stats';
import { rowEntropy } from './trainers/te';
import type { TeTensors, Trainer } from './trainers/types';

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
 * the weights nor the BatchNorm running statistics the forward already updated.
 */
export function train(options: TrainOperatorOptions): OperatorFunction<AttackedBatch, TrainedBatch> {
  const { model, trainer, optimizer, lr: lrSchedule } = options;
  const variables = model.parameters.map((p) => p.variable);
  return map((batch) => {
    const t0 = performance.now();
    const B = batch.indices.length;
    const K = batch.numClasses;
    let y: tf.Tensor1D | undefined;
    let te: TeTensors | null = null;
    const kept: tf.Tensor[] = [];
    try {
      y = tf.tensor1d(batch.labelsUsed, 'int32');
      if (batch.te) te = { weight: batch.te.weight, target: tf.tensor2d(batch.te.target, [B, K]) };
      let logitsNat: tf.Tensor2D | null = null;
      let logitsAdv: tf.Tensor2D | undefined;
      let tePenalty: tf.Tensor1D | null = null;
      const yy = y;
      // BN running statistics move in the train-mode forward, before the finiteness check: keep the
      // values from before it (clones share the data; assign swaps it) to roll them back with a rejected step
      const buffersBefore = model.buffers.map((b) => b.variable.clone());
      kept.push(...buffersBefore);
      const { value, grads } = tf.variableGrads(() => {
        const out = trainer.loss({ model, x: batch.x, xAdv: batch.xAdv, y: yy, te });
        // keep what the records need past variableGrads' scope
        logitsNat = out.logitsNat ? tf.keep(out.logitsNat) : null;
        logitsAdv = tf.keep(out.logitsAdv);
        tePenalty = out.tePenalty ? tf.keep(out.tePenalty) : null;
        return out.loss;
      }, variables);
      kept.push(value, ...Object.values(grads).filter((g): g is tf.Tensor => g != null));
      for (const t of [logitsNat, logitsAdv, tePenalty] as (tf.Tensor | null | undefined)[]) if (t) kept.push(t);

      const gradList = Object.values(grads).filter((g): g is tf.Tensor => g != null);
      const normT = tf.tidy(() => tf.addN(gradList.map((g) => tf.sum(tf.square(g)))));
      kept.push(normT);
      const gradNormSq = normT.dataSync()[0];
      const loss = value.dataSync()[0];
      if (!Number.isFinite(loss) || !Number.isFinite(gradNormSq)) {
        // checked before the SGD update, so the weights (and the last checkpoint) stay finite
        const data = [logitsAdv, logitsNat, tePenalty].map((t) => (t ? ((t as tf.Tensor).dataSync() as Float32Array) : null));
        const rows = nonFiniteRows(B, K, batch.labelsUsed, data);
        model.buffers.forEach((b, i) => b.variable.assign(buffersBefore[i]));
        throw nonFiniteStepError(`train: ${trainer.name}`, loss, gradNormSq, batch.epoch, batch.step, batch.indices, rows);
      }
      const lr = lrSchedule(batch.epoch);
      optimizer.step(grads, lr);

      const advArr = logitsAdv!.dataSync() as Float32Array;
      const natArr = logitsNat ? ((logitsNat as tf.Tensor2D).dataSync() as Float32Array) : batch.logitsNatEval;
      const clean = logitStats(natArr, batch.labelsUsed, K);
      const adv = logitStats(advArr, batch.labelsUsed, K);
      const penalty = tePenalty ? ((tePenalty as tf.Tensor1D).dataSync().slice() as Float32Array) : null;
      const columns: ExampleColumns = exampleColumns({
        epoch: batch.epoch,
        phase: 'train',
        indices: batch.indices,
        labelsTrue: batch.labelsTrue,
        labelsUsed: batch.labelsUsed,
        clean,
        adv,
        teTargetEntropy: batch.te ? rowEntropy(batch.te.target, K) : null,
        tePenalty: penalty,
      });
      const record: StepRecord = {
        epoch: batch.epoch,
        step: batch.step,
        loss,
        grad_norm_sq: gradNormSq,
        lr,
        ms: batch.attackMs + (performance.now() - t0),
        batch_size: B,
      };
      return trainedBatch(batch, columns, record);
    } finally {
      for (const t of kept) t.dispose();
      y?.dispose();
      te?.target.dispose();
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
    }
  });
}

/**
 * Batch rows whose logits (natural or adversarial, [B·K]), per-example CE or TE penalty ([B]) are
 * non-finite, in batch order: where a NaN / Inf entered the loss. Shared with the data-parallel step.
 */
export function nonFiniteRows(B: number, K: number, labels: Int32Array, arrays: readonly (Float32Array | null | undefined)[]): number[] {
  const bad = new Uint8Array(B);
  for (const v of arrays) {
    if (!v) continue;
    const per = v.length / B;
    for (let i = 0; i < B; i++) for (let k = 0; k < per; k++) if (!Number.isFinite(v[i * per + k])) bad[i] = 1;
    // a finite row can still overflow its CE (logsumexp of huge logits)
    if (per === K) {
      const ce = logitStats(v, labels, K).loss;
      for (let i = 0; i < B; i++) if (!Number.isFinite(ce[i])) bad[i] = 1;
    }
  }
  const rows: number[] = [];
  for (let i = 0; i < B; i++) if (bad[i]) rows.push(i);
  return rows;
}

/** The NON_FINITE error of a training step: epoch, step and the dataset indices of the first bad examples. */
export function nonFiniteStepError(what: string, loss: number, gradNormSq: number, epoch: number, step: number, indices: Int32Array, rows: readonly number[]): AtflowError {
  const bad = rows.map((r) => indices[r]);
  const where = bad.length
    ? `; first non-finite per-example values at example${bad.length > 1 ? 's' : ''} ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ` and ${bad.length - 10} more` : ''}`
    : '; every per-example logit and loss is finite (the overflow is in the batch loss or the gradient)';
  return new AtflowError(
    'NON_FINITE',
    `${what} loss ${loss} / squared gradient norm ${gradNormSq} at epoch ${epoch}, step ${step}${where}; the update was not applied (lower optimizer.lr, or resume from the last checkpoint)`,
    { epoch, step, examples: bad },
  );
}
