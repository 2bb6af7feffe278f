import type * as tf from '@tensorflow/tfjs';
import type { NamedPart } from '../../core/named-part';
import type { AttackObjective } from '../attacks/types';
import { ceObjective } from './ce';
import { cwObjective } from './cw-margin';
import { dlrObjective } from './dlr';
import { tradesKlObjective } from './trades-kl';

/** What a trainer hands an objective factory per batch: the clean eval-mode logits (TRADES' KL target) and a scale. */
export interface ObjectiveOptions {
  /** Eval-mode f(x) on the clean batch, owned by the caller for as long as the objective is used. */
  readonly logitsNat: tf.Tensor2D;
  /** Multiplies the objective where it has a scale (TRADES+TE's β/B on KL_sum); default 1. */
  readonly scale?: number;
}

export type ObjectiveFactory = (options: ObjectiveOptions) => AttackObjective;

/**
 * Attack objectives as registry entries (kind 'objective'): what a trainer's inner attack maximises.
 * `attack.objective` in a config picks one; each trainer has its own default ('ce' for PGD-AT and MART,
 * 'trades-kl' for TRADES), and TE composes onto whichever is picked. config/builtins.ts registers these.
 */
export const ceObjectiveEntry: NamedPart<AttackObjective, ObjectiveOptions> = { name: 'ce', create: () => ceObjective() };
export const tradesKlObjectiveEntry: NamedPart<AttackObjective, ObjectiveOptions> = {
  name: 'trades-kl',
  create: (o) => tradesKlObjective(o.logitsNat, o.scale === undefined ? {} : { scale: o.scale }),
};
export const cwMarginObjectiveEntry: NamedPart<AttackObjective, ObjectiveOptions> = { name: 'cw-margin', create: () => cwObjective() };
export const dlrObjectiveEntry: NamedPart<AttackObjective, ObjectiveOptions> = { name: 'dlr', create: () => dlrObjective() };
