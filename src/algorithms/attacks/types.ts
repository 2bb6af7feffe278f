import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';

/**
 * The contract every attack follows: a pure function (model, x, y, seed, options) → x'.
 * The model runs in eval mode. The caller owns x and y; the attack returns a new tensor the caller
 * owns and disposes nothing it did not create. Labels y are int32 [B]; x is NHWC float32 in [0, 1].
 */

/**
 * What an attack maximises, given the adversarial logits f(x') [B, K] (eval mode) and the labels.
 * Calling it returns a scalar. Objectives that need more (clean logits for TRADES' KL, the TE target p̂)
 * close over those tensors; see src/algorithms/objectives (ceObjective, tradesKlObjective, withTePenalty, ...).
 *
 * A plain function `(logitsAdv, y) => scalar` is a valid AttackObjective (the type was widened
 * compatibly with the optional `perExample`).
 */
export interface AttackObjective {
  (logitsAdv: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar;
  /**
   * Example i's additive share of the objective, [B]: objective(l, y) == Σ_i perExample(l, y)_i.
   * (For a batch-mean objective such as mean CE, the share is CE_i / B.) Restarts use it to keep,
   * per example, the x' with the highest share; an objective without it is ranked by per-example
   * cross-entropy against y (the convention of Rice et al.'s attack_pgd).
   */
  readonly perExample?: (logitsAdv: tf.Tensor2D, y: tf.Tensor1D) => tf.Tensor1D;
}

/** Where PGD starts (docs/algorithms.md §4, §12.2 — the authors' code paths differ). */
export type RandomStart =
  | 'none' // x' = x
  | 'uniform' // x + U(−ε, ε), not clamped (loss.py PGD_TE, evaluation PGD)
  | 'uniform-clamped' // clamp(x + U(−ε, ε), 0, 1) (train.py PGD-AT)
  | 'normal' // x + 0.001·N(0, I), not clamped (TRADES, PGD-ℓ2, MART)
  | 'normal-clamped'; // clamp(x + 0.001·N(0, I), 0, 1)

export const RANDOM_STARTS: readonly RandomStart[] = ['none', 'uniform', 'uniform-clamped', 'normal', 'normal-clamped'];

export type Norm = 'linf' | 'l2';

export interface AttackOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly norm?: Norm;
  readonly randomStart?: RandomStart;
  /** Restarts keep, per example, the x' with the highest per-example objective (AttackObjective.perExample). */
  readonly restarts?: number;
  /** Defaults to mean cross-entropy against y (ceObjective()). */
  readonly objective?: AttackObjective;
  /**
   * Each row's stable key (the examples' source indices): row i's random start is drawn from
   * (seed, rowKeys[i]) (see startPoint), so it does not depend on how a batch is split. Default: the row.
   */
  readonly rowKeys?: ArrayLike<number>;
}

export interface Attack<O extends Partial<AttackOptions> = AttackOptions> {
  (model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: O): tf.Tensor4D;
  /**
   * The objective (by registry name) this attack always maximises, ignoring `options.objective`: 'ce'
   * for APGD-CE, 'dlr' for APGD-DLR, 'cw-margin' for CW. Absent: it maximises `options.objective`.
   * A trainer refuses an inner attack whose fixed objective is not the one it needs (CONFIG error).
   */
  readonly fixedObjective?: string;
}

/**
 * What an attack reports per row besides its adversarial points, for AutoAttack's robustness table:
 * whether it fooled the row, and its best attempt: the point of lowest margin z_y − max_{j≠y} z_j among
 * those it evaluated the model at inside the threat model (x included), with the class predicted there.
 */
export interface AttackReport {
  readonly adv: tf.Tensor4D;
  /** 1 = the attack found a misclassified point in the threat model (x misclassified included). */
  readonly fooled: Uint8Array;
  readonly margin: Float32Array;
  readonly predicted: Int32Array;
}
