import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { iteratePgd, runPgd } from './pgd-loop';
import type { AttackObjective, RandomStart } from './types';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

export interface PgdL2Options {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  /** Default 'normal': x + 0.001·N(0, I), unclamped (docs/algorithms.md §4.2 ℓ2). */
  readonly randomStart?: RandomStart;
  readonly restarts?: number;
  /** Default ceObjective(). */
  readonly objective?: AttackObjective;
  /** Rows' keys for their random starts (see AttackOptions.rowKeys); default: the row. */
  readonly rowKeys?: ArrayLike<number>;
}

/** Per-example ℓ2 norms over C·H·W, shaped [B, 1, 1, 1] for broadcasting. */
function exampleNorms(t: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.sqrt(tf.sum(tf.square(tf.reshape(t, [t.shape[0], -1])), 1)), [t.shape[0], 1, 1, 1]) as tf.Tensor4D);
}

/**
 * torch.renorm(δ, p=2, dim=0, maxnorm=ε): each example's δ whose norm exceeds ε is scaled by
 * ε/(‖δ‖₂ + 1e−7) (so it lands just inside the ball); the others are left unchanged.
 */
export function renormL2(delta: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    const norms = exampleNorms(delta);
    const factor = tf.where(tf.greater(norms, eps), tf.div(eps, tf.add(norms, 1e-7)), tf.onesLike(norms));
    return tf.mul(delta, factor) as tf.Tensor4D;
  });
}

/**
 * `steps` PGD-ℓ2 iterations from x'_0 (owned by the caller), docs/algorithms.md §4.2:
 *   ĝ = g / (‖g‖₂ + 1e−10) per example;  x' ← x + renorm_{ε}(x' + α·ĝ − x);  x' ← clamp(x', 0, 1).
 */
export function pgdL2Steps(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  xStart: tf.Tensor4D,
  options: { eps: number; alpha: number; steps: number; objective: AttackObjective },
): tf.Tensor4D {
  return iteratePgd(model, x, y, xStart, options.steps, options.objective, (xAdv, g, x0) => {
    const gHat = tf.div(g, tf.add(exampleNorms(g), 1e-10));
    const delta = tf.sub(tf.add(xAdv, tf.mul(gHat, options.alpha)), x0) as tf.Tensor4D;
    return tf.clipByValue(tf.add(x0, renormL2(delta, options.eps)), 0, 1) as tf.Tensor4D;
  });
}

/**
 * PGD-ℓ2 as loss.py PGD_TE / train_te.py eval (docs/algorithms.md §4.2). The returned x' satisfies
 * ‖x' − x‖₂ ≤ ε per example and x' ∈ [0, 1] (for steps ≥ 1). ε and α for ℓ2 are not given by the
 * paper; Rice et al.'s ε = 128/255, α = 15/255 are a common choice.
 */
export function pgdL2(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: PgdL2Options): tf.Tensor4D {
  return runPgd('pgd-l2', model, x, y, seed, options, 'normal', (start, o) => pgdL2Steps(model, x, y, start, o));
}

/** The registry's 'pgd-l2': PGD in the ℓ2 ball whatever `norm` says. */
export const pgdL2Entry: NamedPart<Attack<AttackOptions>, AttackSettings> = {
  name: 'pgd-l2',
  options: attackSettingsSchema,
  create: () => pgdL2,
};
