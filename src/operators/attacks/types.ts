import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';

/**
 * The contract every attack follows: a pure function (model, x, y, seed, options) → x'.
 * The model runs in eval mode. The caller owns x and y; the attack returns a new tensor the caller
 * owns and disposes nothing it did not create.
 */

/**
 * What an attack maximises, given the adversarial logits f(x') [B, K] (eval mode).
 * Returns a scalar. Objectives that need more (clean logits for TRADES' KL, the TE target p̂)
 * close over those tensors; see src/operators/objectives.
 */
export type AttackObjective = (logitsAdv: tf.Tensor2D, y: tf.Tensor1D) => tf.Scalar;

/** Where PGD starts (PAPER.md §4, §12.2 — the authors' code paths differ). */
export type RandomStart =
  | 'none' // x' = x
  | 'uniform' // x + U(−ε, ε), not clamped (loss.py PGD_TE, evaluation PGD)
  | 'uniform-clamped' // clamp(x + U(−ε, ε), 0, 1) (train.py PGD-AT)
  | 'normal' // x + 0.001·N(0, I), not clamped (TRADES, PGD-ℓ2)
  | 'normal-clamped';

export type Norm = 'linf' | 'l2';

export interface AttackOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly norm?: Norm;
  readonly randomStart?: RandomStart;
  /** Restarts keep, per example, the x' with the highest per-example loss. */
  readonly restarts?: number;
  /** Defaults to mean cross-entropy against y. */
  readonly objective?: AttackObjective;
}

export type Attack<O extends Partial<AttackOptions> = AttackOptions> = (
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: O,
) => tf.Tensor4D;
