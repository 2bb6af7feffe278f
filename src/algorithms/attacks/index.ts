import { apgd, apgdCe, apgdCheckpoints, apgdDlr, type ApgdLoss, type ApgdOptions } from './apgd';
import { cwLinf, type CwLinfOptions } from './cw-linf';
import { fgsm, type FgsmOptions } from './fgsm';
import { pgd } from './pgd';
import { pgdL2, pgdL2Steps, renormL2, type PgdL2Options } from './pgd-l2';
import { pgdLinf, pgdLinfSteps, projectLinf, type PgdLinfOptions } from './pgd-linf';
import { startPoint, NORMAL_START_STD } from './start-point';
import { tradesKlAttack, type TradesKlAttackOptions } from './trades-kl';

export * from './types';
export {
  apgd,
  apgdCe,
  apgdCheckpoints,
  apgdDlr,
  cwLinf,
  fgsm,
  pgd,
  pgdL2,
  pgdL2Steps,
  renormL2,
  pgdLinf,
  pgdLinfSteps,
  projectLinf,
  startPoint,
  NORMAL_START_STD,
  tradesKlAttack,
  type ApgdLoss,
  type ApgdOptions,
  type CwLinfOptions,
  type FgsmOptions,
  type PgdL2Options,
  type PgdLinfOptions,
  type TradesKlAttackOptions,
};

export { attackSettingsSchema, DEFAULT_ATTACK_SETTINGS, type AttackSettings, type ResolvedAttackSettings } from './settings';
/** The registry entries of the built-in attacks (config/builtins.ts registers them; look attacks up in a registry). */
export { apgdCeEntry, apgdDlrEntry } from './apgd';
export { cwEntry } from './cw-linf';
export { fgsmEntry } from './fgsm';
export { pgdEntry } from './pgd';
export { pgdL2Entry } from './pgd-l2';
export { tradesKlEntry } from './trades-kl';

// AutoAttack's other attacks (own option types; composed by src/evaluation/autoattack.ts)
export { apgdTargeted, apgdTargetedReport, classAtRank, targetCount, type ApgdTargetedOptions } from './apgd-targeted';
export { fabTargeted, fabTargetedReport, projectOntoHyperplaneInBox, type FabOptions, type FabRunOptions } from './fab';
export { square, squareP, squareReport, type SquareOptions } from './square';
export { apgdReport, apgdSingleRun, apgdStart, type ApgdNorm, type ApgdRunOptions, type PerExampleLoss } from './apgd';
