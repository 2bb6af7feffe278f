import { unknownName } from '../../core/errors';
import { apgd, apgdCe, apgdCheckpoints, apgdDlr, type ApgdLoss, type ApgdOptions } from './apgd';
import { cwLinf, type CwLinfOptions } from './cw-linf';
import { fgsm, type FgsmOptions } from './fgsm';
import { pgd } from './pgd';
import { pgdL2, pgdL2Steps, renormL2, type PgdL2Options } from './pgd-l2';
import { pgdLinf, pgdLinfSteps, projectLinf, type PgdLinfOptions } from './pgd-linf';
import { startPoint, NORMAL_START_STD } from './start-point';
import { tradesKlAttack, type TradesKlAttackOptions } from './trades-kl';
import type { Attack, AttackOptions } from './types';

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

export type AttackName = 'fgsm' | 'pgd' | 'pgd-l2' | 'trades-kl' | 'cw' | 'apgd-ce' | 'apgd-dlr';

/**
 * Attacks by config name. Every entry accepts AttackOptions (each reads the fields it needs; alpha is
 * unused by APGD, steps by FGSM). 'trades-kl' needs no labels-based objective: it builds KL(p(x)‖p(x')).
 */
export const ATTACKS: Readonly<Record<AttackName, Attack<AttackOptions>>> = {
  fgsm,
  pgd,
  'pgd-l2': pgdL2,
  'trades-kl': tradesKlAttack,
  cw: cwLinf,
  'apgd-ce': apgdCe,
  'apgd-dlr': apgdDlr,
};

export const ATTACK_NAMES = Object.keys(ATTACKS) as AttackName[];

/** The attack registered under `name`; an AtflowError with a did-you-mean hint otherwise. */
export function getAttack(name: string): Attack<AttackOptions> {
  if (!(name in ATTACKS)) throw unknownName('attack', name, ATTACK_NAMES);
  return ATTACKS[name as AttackName];
}

// AutoAttack's other attacks (own option types; composed by src/operators/autoattack.ts)
export { apgdTargeted, apgdTargetedReport, classAtRank, targetCount, type ApgdTargetedOptions } from './apgd-targeted';
export { fabTargeted, fabTargetedReport, projectOntoHyperplaneInBox, type FabOptions, type FabRunOptions } from './fab';
export { square, squareP, squareReport, type SquareOptions } from './square';
export { apgdReport, apgdSingleRun, apgdStart, type ApgdNorm, type ApgdRunOptions, type PerExampleLoss } from './apgd';
