import { unknownName } from '../../core/errors';
import { martTrainer } from './mart';
import { pgdAtTrainer } from './pgd-at';
import { standardTrainer } from './standard';
import { tradesTrainer } from './trades';
import type { OperatorLookup, Trainer, TrainerOptions } from './types';

/** `lookup` resolves the inner attack and its objective by name (the run's registry); default the built-in tables. */
export type TrainerFactory = (options: TrainerOptions, lookup?: OperatorLookup) => Trainer;

/** Trainers by registry name. TE is not a trainer: it composes onto any of them (TemporalEnsemble). */
export const TRAINERS: Readonly<Record<string, TrainerFactory>> = {
  standard: standardTrainer,
  'pgd-at': pgdAtTrainer,
  trades: tradesTrainer,
  mart: martTrainer,
};

/** Trainer settings from the config that only some trainers read. */
export type TrainerSetting = 'beta' | 'penaltyOn';

/**
 * Which of those settings each built-in trainer reads (`trainer.beta`, `trainer.te.penaltyOn`). Giving
 * one to a trainer that ignores it is a config error (buildRun), as an unknown attack name is: a β
 * on PGD-AT would otherwise be silently dropped.
 */
export const TRAINER_SETTINGS: Readonly<Record<string, readonly TrainerSetting[]>> = {
  standard: [],
  'pgd-at': [],
  trades: ['beta', 'penaltyOn'],
  mart: ['beta', 'penaltyOn'],
};

export function createTrainer(name: string, options: TrainerOptions = {}, lookup?: OperatorLookup): Trainer {
  const factory = TRAINERS[name];
  if (!factory) throw unknownName('trainer', name, Object.keys(TRAINERS));
  return factory(options, lookup);
}

export { martTrainer, pgdAtTrainer, standardTrainer, tradesTrainer };
export { MART_DEFAULT_BETA } from './mart';
export { TRADES_DEFAULT_BETA } from './trades';
export { DEFAULT_TRAIN_ATTACK, BUILTIN_LOOKUP, innerMaxOf, innerMax, type InnerMax } from './inner-max';
export { TemporalEnsemble, TE_DEFAULTS, rowEntropy, type TeOptions, type TeState, type TeBatchTarget } from './te';
export { logitStats, softmaxRows, type LogitStats } from './logit-stats';
export type { OperatorLookup, Trainer, TrainerOptions, TrainerAttackChoice, TrainerAttackSettings, TrainerAttackInput, TrainerLossInput, TrainerLossOutput, TeTensors } from './types';
