import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import { ceObjective } from '../objectives/ce';
import { inputGradient } from './input-gradient';
import { bestOverRestarts } from './restarts';
import { startPoint } from './start-point';
import type { AttackObjective, RandomStart } from './types';
import { checkAttackInputs, checkInteger, checkNonNegative, checkRandomStart } from './validate';

export interface PgdLinfOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  /**
   * Default 'uniform' (x + U(−ε, ε), unclamped): evaluation PGD and loss.py PGD_TE. train.py PGD-AT
   * uses 'uniform-clamped'; TRADES and MART use 'normal' (PAPER.md §12.2).
   */
  readonly randomStart?: RandomStart;
  /** Default 1. */
  readonly restarts?: number;
  /** Default ceObjective(): CE_mean(f(x'), y). */
  readonly objective?: AttackObjective;
}

/** The ℓ∞ projection of PAPER.md §4.1: min(max(x', x − ε), x + ε), then clamp to [0, 1]. */
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
  let xAdv = tf.clone(xStart);
  for (let t = 0; t < options.steps; t++) {
    const next = tf.tidy(() => {
      const g = inputGradient(model, xAdv, y, options.objective);
      return projectLinf(tf.add(xAdv, tf.mul(tf.sign(g), options.alpha)) as tf.Tensor4D, x, options.eps);
    });
    xAdv.dispose();
    xAdv = next;
  }
  return xAdv;
}

/**
 * PGD-ℓ∞ (Madry et al.; PAPER.md §4.1, §4.2 ℓ∞). Restart r draws its start from
 * deriveSeed(seed, 'attack-start', r); with restarts > 1 each example keeps the x' with the highest
 * per-example objective. The returned x' satisfies ‖x' − x‖∞ ≤ ε and x' ∈ [0, 1] (for steps ≥ 1).
 */
export function pgdLinf(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: PgdLinfOptions): tf.Tensor4D {
  const name = 'pgd (linf)';
  checkAttackInputs(name, model, x, y);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const alpha = checkNonNegative(name, 'alpha', options.alpha);
  const steps = checkInteger(name, 'steps', options.steps, 0);
  const restarts = checkInteger(name, 'restarts', options.restarts ?? 1, 1);
  const randomStart = checkRandomStart(name, options.randomStart ?? 'uniform');
  const objective = options.objective ?? ceObjective();
  return bestOverRestarts(model, y, objective, restarts, (r) => {
    const start = startPoint(x, eps, randomStart, deriveSeed(seed, 'attack-start', r));
    try {
      return pgdLinfSteps(model, x, y, start, { eps, alpha, steps, objective });
    } finally {
      start.dispose();
    }
  });
}
