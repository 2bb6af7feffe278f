/**
 * Trainers by registry name (config/builtins.ts registers these entries). TE is not a trainer: it composes onto any of them (the 'ensemble'
 * kind).
 */
export { martEntry, martTrainer } from './mart';
export { pgdAtEntry, pgdAtTrainer } from './pgd-at';
export { standardEntry, standardTrainer } from './standard';
export { tradesEntry, tradesTrainer } from './trades';
export { trainerOptionsSchema, betaTrainerOptionsSchema } from './options';
export { MART_DEFAULT_BETA } from './mart';
export { TRADES_DEFAULT_BETA } from './trades';
export { innerMaxOf, innerMax, type InnerMax } from './inner-max';
export {
  TemporalEnsemble,
  TE_DEFAULTS,
  teOptionsSchema,
  temporalEnsembleEntry,
  rowEntropy,
  type EnsembleOptions,
  type TeOptions,
  type TeState,
  type TeBatchTarget,
} from './te';
export { logitStats, softmaxRows, type LogitStats } from './logit-stats';
export type {
  OperatorLookup,
  Trainer,
  TrainerOptions,
  TrainerAttackChoice,
  TrainerAttackSettings,
  TrainerAttackInput,
  TrainerLossInput,
  TrainerLossOutput,
  TeTensors,
} from './types';
