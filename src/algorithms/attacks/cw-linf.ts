import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { cwObjective } from '../objectives/cw-margin';
import { pgdLinf } from './pgd-linf';
import type { RandomStart } from './types';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

export interface CwLinfOptions {
  readonly eps: number;
  /** Default 2/255. */
  readonly alpha?: number;
  /** 20 or 30 are typical (docs/algorithms.md §4.4). */
  readonly steps: number;
  /** Default 'uniform'. */
  readonly randomStart?: RandomStart;
  readonly restarts?: number;
}

/** CW∞ (docs/algorithms.md §4.4): PGD-ℓ∞ maximising the margin max_{j≠y} f_j(x') − f_y(x'), uniform start, α = 2/255. */
export function cwLinf(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: CwLinfOptions): tf.Tensor4D {
  return pgdLinf(model, x, y, seed, {
    eps: options.eps,
    alpha: options.alpha ?? 2 / 255,
    steps: options.steps,
    randomStart: options.randomStart ?? 'uniform',
    restarts: options.restarts,
    objective: cwObjective(),
  });
}
cwLinf.fixedObjective = 'cw-margin';

/** The registry's 'cw': CW-ℓ∞, which always maximises the CW margin. */
export const cwEntry: NamedPart<Attack<AttackOptions>, AttackSettings> = {
  name: 'cw',
  options: attackSettingsSchema,
  create: () => cwLinf,
};
