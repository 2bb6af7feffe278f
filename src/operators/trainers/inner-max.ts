import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { pgdLinf } from '../attacks/pgd-linf';
import type { AttackObjective, RandomStart } from '../attacks/types';
import type { TrainerAttackInput, TrainerAttackSettings, TrainerOptions } from './types';

/** PGD defaults of the authors' training attacks (PAPER.md §4.1, §4.3, §6). */
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
    randomStart: a.randomStart ?? randomStart,
  };
  if (s.norm !== 'linf') {
    throw new AtflowError('CONFIG', `trainer '${trainer}': attack.norm '${s.norm}' is not available for training yet; use 'linf'`, { field: 'attack.norm', value: s.norm });
  }
  return s;
}

/** Runs the trainer's PGD with its objective (eval mode, inside the attack's own scopes). */
export function innerMax(settings: TrainerAttackSettings, input: TrainerAttackInput, objective: AttackObjective): tf.Tensor4D {
  return pgdLinf(input.model, input.x, input.y, input.seed, {
    eps: settings.eps,
    alpha: settings.alpha,
    steps: settings.steps,
    restarts: settings.restarts,
    randomStart: settings.randomStart,
    objective,
  });
}

export function checkBeta(trainer: string, beta: number): number {
  if (!Number.isFinite(beta) || beta < 0) throw new AtflowError('CONFIG', `trainer '${trainer}': beta must be a finite number ≥ 0, got ${beta}`, { field: 'trainer.beta', value: beta });
  return beta;
}
