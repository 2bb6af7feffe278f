import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import { ceObjective } from '../objectives/ce';
import { pgdLinfSteps } from './pgd-linf';
import { startPoint } from './start-point';
import type { AttackObjective, RandomStart } from './types';
import { checkAttackInputs, checkNonNegative, checkRandomStart } from './validate';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

export interface FgsmOptions {
  readonly eps: number;
  /** Step size; default ε (Goodfellow et al.). With randomStart 'uniform' and α = 1.25ε this is Wong et al.'s FGSM-RS. */
  readonly alpha?: number;
  /** Default 'none'. */
  readonly randomStart?: RandomStart;
  /** Default ceObjective(). */
  readonly objective?: AttackObjective;
  /** Rows' keys for their random starts (see AttackOptions.rowKeys); default: the row. */
  readonly rowKeys?: ArrayLike<number>;
}

/** FGSM: x' = clamp(proj_ε(x'_0 + α·sign(∇ J(x'_0))), 0, 1), i.e. one PGD-ℓ∞ step (x'_0 = x by default). */
export function fgsm(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: FgsmOptions): tf.Tensor4D {
  const name = 'fgsm';
  checkAttackInputs(name, model, x, y);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const alpha = checkNonNegative(name, 'alpha', options.alpha ?? eps);
  const randomStart = checkRandomStart(name, options.randomStart ?? 'none');
  const start = startPoint(x, eps, randomStart, deriveSeed(seed, 'attack-start', 0), options.rowKeys);
  try {
    return pgdLinfSteps(model, x, y, start, { eps, alpha, steps: 1, objective: options.objective ?? ceObjective() });
  } finally {
    start.dispose();
  }
}

/** The registry's 'fgsm' (steps is unused; FGSM-RS is `alpha` 1.25·ε with a uniform start). */
export const fgsmEntry: NamedPart<Attack<AttackOptions>, AttackSettings> = {
  name: 'fgsm',
  options: attackSettingsSchema,
  create: () => fgsm,
};
