import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { iteratePgd, runPgd } from './pgd-loop';
import type { AttackObjective, RandomStart } from './types';

export interface PgdLinfOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  /**
   * Default 'uniform' (x + U(−ε, ε), unclamped): evaluation PGD and loss.py PGD_TE. train.py PGD-AT
   * uses 'uniform-clamped'; TRADES and MART use 'normal' (docs/algorithms.md §12.2).
   */
  readonly randomStart?: RandomStart;
  /** Default 1. */
  readonly restarts?: number;
  /** Default ceObjective(): CE_mean(f(x'), y). */
  readonly objective?: AttackObjective;
  /** Rows' keys for their random starts (see AttackOptions.rowKeys); default: the row. */
  readonly rowKeys?: ArrayLike<number>;
}

/** The ℓ∞ projection of docs/algorithms.md §4.1: min(max(x', x − ε), x + ε), then clamp to [0, 1]. */
export function projectLinf(xAdv: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.minimum(tf.maximum(xAdv, tf.sub(x, eps)), tf.add(x, eps)), 0, 1) as tf.Tensor4D);
}

/**
 * `steps` PGD-ℓ∞ iterations from a given start x'_0 (owned by the caller):
 *   x' ← x' + α·sign(∇_{x'} J);  x' ← min(max(x', x−ε), x+ε);  x' ← clamp(x', 0, 1).
 * Each step runs in its own tidy, so only the current iterate is alive between steps. Returns a new tensor.
 */
export function pgdLinfSteps(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  xStart: tf.Tensor4D,
  options: { eps: number; alpha: number; steps: number; objective: AttackObjective },
): tf.Tensor4D {
  // projectLinf's two clamps in one: clamp_[0,1](clamp_[x−ε, x+ε](v)) = clamp_[clip(x−ε), clip(x+ε)](v)
  // for ε ≥ 0, bit for bit (min / max only select); the bounds are computed once per attack, so each
  // of the `steps` iterations runs 5 elementwise kernels instead of 8.
  const lo = tf.tidy(() => tf.clipByValue(tf.sub(x, options.eps), 0, 1)) as tf.Tensor4D;
  const hi = tf.tidy(() => tf.clipByValue(tf.add(x, options.eps), 0, 1)) as tf.Tensor4D;
  try {
    return iteratePgd(
      model,
      x,
      y,
      xStart,
      options.steps,
      options.objective,
      (xAdv, g) => tf.minimum(tf.maximum(tf.add(xAdv, tf.mul(tf.sign(g), options.alpha)), lo), hi) as tf.Tensor4D,
    );
  } finally {
    tf.dispose([lo, hi]);
  }
}

/**
 * PGD-ℓ∞ (Madry et al.; docs/algorithms.md §4.1, §4.2 ℓ∞). Restart r draws its start from
 * deriveSeed(seed, 'attack-start', r); with restarts > 1 each example keeps the x' with the highest
 * per-example objective. The returned x' satisfies ‖x' − x‖∞ ≤ ε and x' ∈ [0, 1] (for steps ≥ 1).
 */
export function pgdLinf(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: PgdLinfOptions): tf.Tensor4D {
  return runPgd('pgd (linf)', model, x, y, seed, options, 'uniform', (start, o) => pgdLinfSteps(model, x, y, start, o));
}
