import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import type { ExampleColumns, StepRecord } from '../core/records';
import type { Sgd } from './optim/sgd';
import { exampleColumns, logitStats, softmaxRows } from './trainers/logit-stats';
import { rowEntropy, type TeBatchTarget, type TemporalEnsemble } from './trainers/te';
import type { TeTensors, Trainer } from './trainers/types';

/**
 * One training step, written once (docs/algorithms.md §5, §8.2). The single-thread `attack` → `train`
 * operators and the data-parallel path both run exactly these pieces; the data-parallel layer only
 * splits a batch into shares (workers run the two halves on each) and merges the gradients back before
 * the same update:
 *  1. attackHalf    eval-mode f(x), TE's p̂ from it, the trainer's attack → x′ (no weights change);
 *  2. gradientHalf  tf.variableGrads over the trainer's train-mode loss (BN running statistics move);
 *  3. applyUpdate   Σ‖∇W‖²_F before weight decay, the finiteness check, SGD;
 *  4. stepRecords   the train-phase example columns and the step record.
 */

export interface AttackHalfInput {
  readonly model: Model;
  readonly trainer: Trainer;
  /** Clean (augmented) batch or share, NHWC in [0, 1]; owned by the caller. */
  readonly x: tf.Tensor4D;
  readonly labels: Int32Array;
  /** The batch's attack seed: deriveSeed(run seed, 'attack', epoch, step). */
  readonly seed: number;
  /** The rows' source indices (each row's random start is keyed by it). */
  readonly rowKeys: Int32Array;
  /** TE's weight and p̂ for these rows given the eval-mode logits [B·K], or null (TE off or not started). */
  readonly teTarget: (logitsNatEval: Float32Array) => TeBatchTarget | null;
  /** Called right before the attack (the fault-injection point of the single-thread operator). */
  readonly beforeAttack?: () => void;
}

export interface AttackHalf {
  /** x′, owned by the caller. */
  readonly xAdv: tf.Tensor4D;
  /** Eval-mode f(x) before the attack [B·K]. */
  readonly logitsNatEval: Float32Array;
  readonly te: TeBatchTarget | null;
}

/** Step 1 (eval mode): f(x), TE's target from it, then the trainer's attack with f(x) and (p̂, w(t)) at hand. */
export function attackHalf(input: AttackHalfInput): AttackHalf {
  const { model, trainer, x } = input;
  let y: tf.Tensor1D | undefined;
  let logitsNat: tf.Tensor2D | undefined;
  let teTensors: TeTensors | null = null;
  try {
    y = tf.tensor1d(input.labels, 'int32');
    logitsNat = tf.tidy(() => model.apply(x, 'eval'));
    const logitsNatEval = logitsNat.dataSync().slice() as Float32Array;
    const te = input.teTarget(logitsNatEval);
    if (te) teTensors = { weight: te.weight, target: tf.tensor2d(te.target, [input.labels.length, model.numClasses]) };
    input.beforeAttack?.();
    const xAdv = trainer.attack({ model, x, y, seed: input.seed, rowKeys: input.rowKeys, logitsNatEval: logitsNat, te: teTensors });
    return { xAdv, logitsNatEval, te };
  } finally {
    y?.dispose();
    logitsNat?.dispose();
    teTensors?.target.dispose();
  }
}

/** TE's part of step 1 on the main thread: from its start epoch, p ← η·p + (1 − η)·softmax(f(x)) for the rows, p̂ returned. */
export function teUpdate(
  te: TemporalEnsemble | null | undefined,
  epoch: number,
  indices: Int32Array,
  numClasses: number,
): (logitsNatEval: Float32Array) => TeBatchTarget | null {
  return (logitsNatEval) =>
    te && te.isActive(epoch) ? { weight: te.weight(epoch), target: te.update(indices, softmaxRows(logitsNatEval, numClasses)) } : null;
}

export interface GradientHalf {
  /** The trainer's scalar loss. */
  readonly value: tf.Scalar;
  /** ∇ of the loss per parameter (tf.variableGrads' map). */
  readonly grads: tf.NamedTensorMap;
  readonly logitsNat: tf.Tensor2D | null;
  readonly logitsAdv: tf.Tensor2D;
  readonly tePenalty: tf.Tensor1D | null;
  /** Frees every tensor above. */
  dispose(): void;
}

/** Step 2 (train mode): the trainer's loss and its gradient w.r.t. the model's parameters; no update. */
export function gradientHalf(
  model: Model,
  trainer: Trainer,
  x: tf.Tensor4D,
  xAdv: tf.Tensor4D,
  y: tf.Tensor1D,
  te: TeTensors | null,
): GradientHalf {
  let logitsNat: tf.Tensor2D | null = null;
  let logitsAdv: tf.Tensor2D | undefined;
  let tePenalty: tf.Tensor1D | null = null;
  const { value, grads } = tf.variableGrads(
    () => {
      const out = trainer.loss({ model, x, xAdv, y, te });
      // keep what the records need past variableGrads' scope
      logitsNat = out.logitsNat ? tf.keep(out.logitsNat) : null;
      logitsAdv = tf.keep(out.logitsAdv);
      tePenalty = out.tePenalty ? tf.keep(out.tePenalty) : null;
      return out.loss;
    },
    model.parameters.map((p) => p.variable),
  );
  const owned: tf.Tensor[] = [value, ...Object.values(grads).filter((g): g is tf.Tensor => g != null)];
  for (const t of [logitsNat, logitsAdv, tePenalty] as (tf.Tensor | null | undefined)[]) if (t) owned.push(t);
  return { value, grads, logitsNat, logitsAdv: logitsAdv!, tePenalty, dispose: () => tf.dispose(owned) };
}

export interface UpdateInput {
  readonly optimizer: Sgd;
  /** The batch's gradient per parameter (one gradientHalf's, or the shares' merged); owned by the caller. */
  readonly grads: tf.NamedTensorMap;
  readonly loss: number;
  readonly lr: number;
  /** For the NON_FINITE error: what failed, and where in the run. */
  readonly what: string;
  readonly epoch: number;
  readonly step: number;
  readonly indices: Int32Array;
  readonly labels: Int32Array;
  readonly numClasses: number;
  /** The batch's logits f(x′), f(x) and TE penalties, read only when the step is rejected. */
  readonly perExample: () => readonly (Float32Array | null | undefined)[];
  /** Undoes what the forwards already changed (BN running statistics) when the step is rejected. */
  readonly onReject?: () => void;
}

/**
 * Step 3: the squared global gradient norm Σ‖∇W‖²_F before weight decay (float32 on the device), then
 * SGD, unless the loss or the norm is non-finite: then nothing is updated and a NON_FINITE error names
 * the epoch, the step and the examples whose values went non-finite. Returns the squared norm.
 */
export function applyUpdate(u: UpdateInput): number {
  const gradList = Object.values(u.grads).filter((g): g is tf.Tensor => g != null);
  let gradNormSq = 0;
  if (gradList.length) {
    const normT = tf.tidy(() => tf.addN(gradList.map((g) => tf.sum(tf.square(g)))));
    gradNormSq = normT.dataSync()[0];
    normT.dispose();
  }
  if (!Number.isFinite(u.loss) || !Number.isFinite(gradNormSq)) {
    // checked before the SGD update, so the weights (and the last checkpoint) stay finite
    const rows = nonFiniteRows(u.labels.length, u.numClasses, u.labels, u.perExample());
    u.onReject?.();
    throw nonFiniteStepError(u.what, u.loss, gradNormSq, u.epoch, u.step, u.indices, rows);
  }
  u.optimizer.step(u.grads, u.lr);
  return gradNormSq;
}

export interface StepRecordsInput {
  readonly epoch: number;
  readonly step: number;
  readonly indices: Int32Array;
  readonly labelsTrue: Int32Array;
  readonly labelsUsed: Int32Array;
  readonly numClasses: number;
  /** Train-mode f(x) where the trainer has that forward, else the eval-mode f(x) from before the attack [B·K]. */
  readonly logitsClean: Float32Array;
  /** Train-mode f(x′) [B·K]. */
  readonly logitsAdv: Float32Array;
  readonly tePenalty: Float32Array | null;
  readonly te: TeBatchTarget | null;
  readonly loss: number;
  readonly gradNormSq: number;
  readonly lr: number;
  readonly ms: number;
}

/** Step 4: the batch's train-phase example columns and its step record. */
export function stepRecords(s: StepRecordsInput): { columns: ExampleColumns; record: StepRecord } {
  const K = s.numClasses;
  const columns = exampleColumns({
    epoch: s.epoch,
    phase: 'train',
    indices: s.indices,
    labelsTrue: s.labelsTrue,
    labelsUsed: s.labelsUsed,
    clean: logitStats(s.logitsClean, s.labelsUsed, K),
    adv: logitStats(s.logitsAdv, s.labelsUsed, K),
    teTargetEntropy: s.te ? rowEntropy(s.te.target, K) : null,
    tePenalty: s.tePenalty,
  });
  const record: StepRecord = {
    epoch: s.epoch,
    step: s.step,
    loss: s.loss,
    grad_norm_sq: s.gradNormSq,
    lr: s.lr,
    ms: s.ms,
    batch_size: s.indices.length,
  };
  return { columns, record };
}

/**
 * Batch rows whose logits (natural or adversarial, [B·K]), per-example CE or TE penalty ([B]) are
 * non-finite, in batch order: where a NaN / Inf entered the loss.
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
export function nonFiniteStepError(
  what: string,
  loss: number,
  gradNormSq: number,
  epoch: number,
  step: number,
  indices: Int32Array,
  rows: readonly number[],
): AtflowError {
  const bad = rows.map((r) => indices[r]);
  const where = bad.length
    ? `; first non-finite per-example values at example${bad.length > 1 ? 's' : ''} ` +
      `${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ` and ${bad.length - 10} more` : ''}`
    : '; every per-example logit and loss is finite (the overflow is in the batch loss or the gradient)';
  return new AtflowError(
    'NON_FINITE',
    `${what} loss ${loss} / squared gradient norm ${gradNormSq} at epoch ` +
      `${epoch}, step ${step}${where}; the update was not applied (lower ` +
      `optimizer.lr, or resume from the last checkpoint)`,
    { epoch, step, examples: bad },
  );
}
