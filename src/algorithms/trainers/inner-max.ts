import type * as tf from '@tensorflow/tfjs';
import { AtflowError, unknownName } from '../../core/errors';
import { ATTACKS } from '../attacks';
import type { Attack, AttackObjective, AttackOptions, RandomStart } from '../attacks/types';
import { OBJECTIVES, type ObjectiveFactory } from '../objectives/by-name';
import type { OperatorLookup, TrainerAttackInput, TrainerAttackSettings, TrainerOptions } from './types';

/** PGD defaults of the authors' training attacks (docs/algorithms.md §4.1, §4.3, §6). */
export const DEFAULT_TRAIN_ATTACK = { eps: 8 / 255, alpha: 2 / 255, steps: 10, norm: 'linf', restarts: 1 } as const;

/** The built-in attacks and objectives: what a trainer created outside a registry resolves names with. */
export const BUILTIN_LOOKUP: OperatorLookup = {
  attack(name) {
    const a = (ATTACKS as Readonly<Record<string, Attack<AttackOptions>>>)[name];
    if (!a) throw unknownName('attack', name, Object.keys(ATTACKS));
    return a;
  },
  objective(name) {
    const o = OBJECTIVES[name];
    if (!o) throw unknownName('objective', name, Object.keys(OBJECTIVES));
    return o;
  },
};

/** A trainer's inner maximisation, resolved by name: the attack, the objective it maximises, and the settings. */
export interface InnerMax {
  readonly settings: TrainerAttackSettings;
  /** Registry names of the attack and of its objective. */
  readonly name: string;
  readonly objectiveName: string;
  readonly attack: Attack<AttackOptions>;
  /** Builds the batch's objective (before TE is composed onto it). */
  readonly objective: ObjectiveFactory;
}

/** An unknown name as a CONFIG-path error: `attack.name: unknown attack 'x' ...`. */
function resolve<T>(field: string, find: () => T): T {
  try {
    return find();
  } catch (e) {
    if (e instanceof AtflowError && e.code === 'UNKNOWN_NAME') throw new AtflowError(e.code, `${field}: ${e.message}`, { ...e.details, field });
    throw e;
  }
}

/**
 * Fills the trainer's attack settings (the user's, else the authors' defaults with `randomStart` given by
 * the trainer) and resolves the inner attack (`attack.name`, default 'pgd') and its objective
 * (`attack.objective`, default `defaultObjective`) through `lookup`. An attack with a fixed objective
 * (APGD-CE: 'ce', APGD-DLR: 'dlr', CW: 'cw-margin') is refused unless that is the objective the trainer
 * maximises and no TE penalty is composed onto it: it would silently maximise something else.
 */
export function innerMaxOf(trainer: string, options: TrainerOptions, randomStart: RandomStart, defaultObjective: string, lookup: OperatorLookup = BUILTIN_LOOKUP): InnerMax {
  const a = options.attack ?? {};
  const name = a.name ?? 'pgd';
  const objectiveName = a.objective ?? defaultObjective;
  const settings: TrainerAttackSettings = {
    eps: a.eps ?? DEFAULT_TRAIN_ATTACK.eps,
    alpha: a.alpha ?? DEFAULT_TRAIN_ATTACK.alpha,
    steps: a.steps ?? DEFAULT_TRAIN_ATTACK.steps,
    norm: a.norm ?? DEFAULT_TRAIN_ATTACK.norm,
    restarts: a.restarts ?? DEFAULT_TRAIN_ATTACK.restarts,
    // ℓ2 always starts at x + 0.001·N(0, I) in the authors' code (docs/algorithms.md §4.2)
    randomStart: a.randomStart ?? ((a.norm ?? 'linf') === 'l2' ? 'normal' : randomStart),
  };
  if (settings.norm !== 'linf' && settings.norm !== 'l2') {
    throw new AtflowError('CONFIG', `trainer '${trainer}': attack.norm must be 'linf' or 'l2', got '${String(settings.norm)}'`, { field: 'attack.norm', value: settings.norm });
  }
  const attack = resolve('attack.name', () => lookup.attack(name));
  const objective = resolve('attack.objective', () => lookup.objective(objectiveName));
  const fixed = attack.fixedObjective;
  if (fixed !== undefined && (fixed !== objectiveName || options.te)) {
    const wanted = `'${objectiveName}'${options.te ? ' + the TE penalty' : ''}`;
    throw new AtflowError(
      'CONFIG',
      `attack.name: '${name}' always maximises its own objective '${fixed}' and takes no other, but trainer '${trainer}' maximises ${wanted}; pick an attack that takes an objective (pgd, pgd-l2, fgsm, trades-kl)${options.te ? '' : ` or set attack.objective to '${fixed}'`}`,
      { field: 'attack.name', value: name, trainer, objective: objectiveName, fixedObjective: fixed },
    );
  }
  return { settings, name, objectiveName, attack, objective };
}

/** Runs the trainer's inner attack with its objective (eval mode, inside the attack's own scopes). */
export function innerMax(inner: InnerMax, input: TrainerAttackInput, objective: AttackObjective): tf.Tensor4D {
  const s = inner.settings;
  return inner.attack(input.model, input.x, input.y, input.seed, {
    norm: s.norm,
    eps: s.eps,
    alpha: s.alpha,
    steps: s.steps,
    restarts: s.restarts,
    randomStart: s.randomStart,
    objective,
    rowKeys: input.rowKeys,
  });
}

export function checkBeta(trainer: string, beta: number): number {
  if (!Number.isFinite(beta) || beta < 0) throw new AtflowError('CONFIG', `trainer '${trainer}': beta must be a finite number ≥ 0, got ${beta}`, { field: 'trainer.beta', value: beta });
  return beta;
}
