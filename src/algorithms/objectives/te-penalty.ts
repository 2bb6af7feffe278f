import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { AttackObjective } from '../attacks/types';
import { checkLogits, checkSameShape } from './validate';

/**
 * The temporal-ensembling penalty per example (docs/algorithms.md §5.3): w·mean_k (softmax(z_i)_k − p̂_ik)².
 * `targets` p̂ are the row-normalised EMA soft labels [B, K]; they are a constant (no gradient flows
 * into them here; the EMA is updated from detached eval-mode predictions).
 */
export function tePenaltyPerExample(logits: tf.Tensor2D, targets: tf.Tensor2D, weight: number): tf.Tensor1D {
  checkLogits('tePenalty', 'logits', logits);
  checkSameShape('tePenalty', 'logits', logits, 'targets', targets);
  return tf.tidy(() => tf.mul(tf.mean(tf.squaredDifference(tf.softmax(logits), targets), 1), weight) as tf.Tensor1D);
}

/**
 * w·mean over B×K of (softmax(z) − p̂)², exactly the `.mean()` of the authors' code (docs/algorithms.md §5.3,
 * "Reduction detail"): w = 300 is a per-example weight of 300/K on ‖p − p̂‖²₂, averaged over the batch.
 */
export function tePenalty(logits: tf.Tensor2D, targets: tf.Tensor2D, weight: number): tf.Scalar {
  checkLogits('tePenalty', 'logits', logits);
  checkSameShape('tePenalty', 'logits', logits, 'targets', targets);
  return tf.tidy(() => tf.mul(tf.mean(tf.squaredDifference(tf.softmax(logits), targets)), weight) as tf.Scalar);
}

export interface TePenaltyTerm {
  /** w(t), the TE weight of the current epoch. */
  readonly weight: number;
  /** p̂ for the batch, [B, K], owned by the caller (kept alive while the objective is used). */
  readonly targets: tf.Tensor2D;
}

/**
 * Adds the TE penalty on the adversarial outputs to an attack objective (docs/algorithms.md §4.2, §5.3):
 *   PGD+TE:    withTePenalty(ceObjective(), te)                              = CE_mean + w·mean_{B×K}(p(x') − p̂)²
 *   TRADES+TE: withTePenalty(tradesKlObjective(logitsNat, {scale: β/B}), te) = (β/B)·KL_sum + w·mean_{B×K}(…)²
 * Per-example share: base share + w·mean_k(p(x'_i) − p̂_i)² / B (the B×K mean splits into B equal parts).
 */
export function withTePenalty(objective: AttackObjective, term: TePenaltyTerm): AttackObjective {
  if (!Number.isFinite(term.weight) || term.weight < 0) {
    throw new AtflowError('ARGUMENT', `withTePenalty: weight must be a finite number ≥ 0, got ${term.weight}`, { weight: term.weight });
  }
  const combined = (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar =>
    tf.tidy(() => tf.add(objective(logitsAdv, y), tePenalty(logitsAdv, term.targets, term.weight)) as tf.Scalar);
  const base = objective.perExample;
  if (!base) return combined;
  return Object.assign(combined, {
    perExample: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Tensor1D =>
      tf.tidy(
        () =>
          tf.add(base(logitsAdv, y), tf.div(tePenaltyPerExample(logitsAdv, term.targets, term.weight), logitsAdv.shape[0])) as tf.Tensor1D,
      ),
  });
}

/**
 * A trainer's loss with TE composed on (docs/algorithms.md §5.3): `loss` + w·mean_{B×K}(softmax(penalised) − p̂)²,
 * plus the per-example penalty for the examples table. Without TE (`te` null) the loss is unchanged.
 */
export function addTePenalty(
  loss: tf.Scalar,
  penalised: tf.Tensor2D,
  te: { readonly weight: number; readonly target: tf.Tensor2D } | null,
): { loss: tf.Scalar; perExample: tf.Tensor1D | null } {
  if (!te) return { loss, perExample: null };
  return {
    loss: tf.add(loss, tePenalty(penalised, te.target, te.weight)),
    perExample: tePenaltyPerExample(penalised, te.target, te.weight),
  };
}
