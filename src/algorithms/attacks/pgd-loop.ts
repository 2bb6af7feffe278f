import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import { ceObjective } from '../objectives/ce';
import { inputGradient } from './input-gradient';
import { bestOverRestarts } from './restarts';
import { startPoint } from './start-point';
import type { AttackObjective, RandomStart } from './types';
import { checkAttackInputs, checkInteger, checkNonNegative, checkRandomStart } from './validate';

/** One PGD update: the next iterate from the current one and ∇_{x'} J (inside a tidy). */
export type PgdUpdate = (xAdv: tf.Tensor4D, grad: tf.Tensor4D, x: tf.Tensor4D) => tf.Tensor4D;

/**
 * `steps` iterations x' ← update(x', ∇_{x'} J) from a start owned by the caller. Each step runs in its
 * own tidy, so only the current iterate is alive between steps. Returns a new tensor.
 */
export function iteratePgd(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  xStart: tf.Tensor4D,
  steps: number,
  objective: AttackObjective,
  update: PgdUpdate,
): tf.Tensor4D {
  let xAdv = tf.clone(xStart);
  for (let t = 0; t < steps; t++) {
    const next = tf.tidy(() => update(xAdv, inputGradient(model, xAdv, y, objective), x));
    xAdv.dispose();
    xAdv = next;
  }
  return xAdv;
}

export interface PgdRunOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly randomStart?: RandomStart;
  readonly restarts?: number;
  readonly objective?: AttackObjective;
  /** Rows' keys for their random starts (AttackOptions.rowKeys). */
  readonly rowKeys?: ArrayLike<number>;
}

/**
 * The part every PGD variant shares: validate, then per restart r draw the start from
 * deriveSeed(seed, 'attack-start', r), iterate, and keep each example's best x' over restarts.
 */
export function runPgd(
  name: string,
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: PgdRunOptions,
  defaultStart: RandomStart,
  iterate: (start: tf.Tensor4D, o: { eps: number; alpha: number; steps: number; objective: AttackObjective }) => tf.Tensor4D,
): tf.Tensor4D {
  checkAttackInputs(name, model, x, y);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const alpha = checkNonNegative(name, 'alpha', options.alpha);
  const steps = checkInteger(name, 'steps', options.steps, 0);
  const restarts = checkInteger(name, 'restarts', options.restarts ?? 1, 1);
  const randomStart = checkRandomStart(name, options.randomStart ?? defaultStart);
  const objective = options.objective ?? ceObjective();
  return bestOverRestarts(model, y, objective, restarts, (r) => {
    const start = startPoint(x, eps, randomStart, deriveSeed(seed, 'attack-start', r), options.rowKeys);
    try {
      return iterate(start, { eps, alpha, steps, objective });
    } finally {
      start.dispose();
    }
  });
}
