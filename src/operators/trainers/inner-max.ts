import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { pgd } from '../attacks/pgd';
import type { AttackObjective, RandomStart } from '../attacks/types';
import type { TrainerAttackInput, TrainerAttackSettings, TrainerOptions } from './types';

/** PGD defaults of the authors' training attacks (docs/algorithms.md §4.1, §4.3, §6). */
export const DEFAULT_TRAIN_ATTACK = { eps: 8 / 255, alpha: 2 / 255, steps: 10, norm: 'linf', restarts: 1 } as const;

/** Fills the trainer's attack settings: the user's, else the authors' defaults with `randomStart` given by the trainer. */
export function attackSettings(trainer: string, options: TrainerOptions, randomStart: RandomStart): TrainerAttackSettings {
  const a = options.attack ?? {};
  const s: TrainerAttackSettings = {
    eps: a.eps ?? DEFAULT_TRAIN_ATTACK.eps,
    alpha: a.alpha ?? DEFAULT_TRAIN_ATTACK.alpha,
    steps: a.steps ?? DEFAULT_TRAIN_ATTACK.steps,
    norm: a.norm ?? DEFAULT_TRAIN_ATTACK.norm,
    restarts: a.restarts ?? DEFAULT_TRAIN_ATTACK.restarts,
    // ℓ2 always starts at x + 0.001·N(0, I) in the authors' code (docs/algorithms.md §4.2)
    randomStart: a.randomStart ?? ((a.norm ?? 'linf') === 'l2' ? 'normal' : randomStart),
  };
  if (s.norm !== 'linf' && s.norm !== 'l2') {
    throw new AtflowError('CONFIG', `trainer '${trainer}': attack.norm must be 'linf' or 'l2', got '${String(s.norm)}'`, { field: 'attack.norm', value: s.norm });
  }
  return s;
}

/** Runs the trainer's PGD (ℓ∞ or ℓ2) with its objective (eval mode, inside the attack's own scopes). */
export function innerMax(settings: TrainerAttackSettings, input: TrainerAttackInput, objective: AttackObjective): tf.Tensor4D {
  return pgd(input.model, input.x, input.y, input.seed, {
    norm: settings.norm,
    eps: settings.eps,
    alpha: settings.alpha,
    steps: settings.steps,
    restarts: settings.restarts,
    randomStart: settings.randomStart,
    objective,
    rowKeys: input.rowKeys,
  });
}

export function checkBeta(trainer: string, beta: number): number {
  if (!Number.isFinite(beta) || beta < 0) throw new AtflowError('CONFIG', `trainer '${trainer}': beta must be a finite number ≥ 0, got ${beta}`, { field: 'trainer.beta', value: beta });
  return beta;
}
