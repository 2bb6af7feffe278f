import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { NamedPart } from '../../core/named-part';
import { pgdEntry } from '../attacks/pgd';
import { DEFAULT_ATTACK_SETTINGS } from '../attacks/settings';
import type { Attack, AttackObjective, AttackOptions, RandomStart } from '../attacks/types';
import type { ObjectiveFactory, ObjectiveOptions } from '../objectives/by-name';
import type { OperatorLookup, TrainerAttackInput, TrainerAttackSettings, TrainerOptions } from './types';

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

/**
 * Fills the trainer's attack settings (the user's, else the one default, DEFAULT_ATTACK_SETTINGS, with
 * `randomStart` given by the trainer) and resolves the inner attack (`attack.name`, default 'pgd') and its
 * objective (`attack.objective`, default the trainer's) through `lookup`, the run's registry (its errors
 * name the config field). Without a lookup (a trainer made directly, not through a registry) the trainer
 * runs its own defaults, PGD and its objective, and another name is refused: names live in a registry.
 * An attack with a fixed objective (APGD-CE: 'ce', APGD-DLR: 'dlr', CW: 'cw-margin') is refused unless
 * that is the objective the trainer maximises and no TE penalty is composed onto it: it would silently
 * maximise something else.
 */
export function innerMaxOf(
  trainer: string,
  options: TrainerOptions,
  randomStart: RandomStart,
  defaultObjective: NamedPart<AttackObjective, ObjectiveOptions>,
  lookup?: OperatorLookup,
): InnerMax {
  const { name = pgdEntry.name, objective: objectiveChoice, ...attackOptions } = options.attack ?? {};
  const objectiveName = objectiveChoice ?? defaultObjective.name;
  const d = DEFAULT_ATTACK_SETTINGS;
  const settings: TrainerAttackSettings = {
    eps: attackOptions.eps ?? d.eps,
    alpha: attackOptions.alpha ?? d.alpha,
    steps: attackOptions.steps ?? d.steps,
    norm: attackOptions.norm ?? d.norm,
    restarts: attackOptions.restarts ?? d.restarts,
    // ℓ2 always starts at x + 0.001·N(0, I) in the authors' code (docs/algorithms.md §4.2)
    randomStart: attackOptions.randomStart ?? ((attackOptions.norm ?? d.norm) === 'l2' ? 'normal' : randomStart),
  };
  if (settings.norm !== 'linf' && settings.norm !== 'l2') {
    throw new AtflowError('CONFIG', `trainer '${trainer}': attack.norm must be 'linf' or 'l2', got '${String(settings.norm)}'`, {
      field: 'attack.norm',
      value: settings.norm,
    });
  }
  const attack = lookup
    ? lookup.attack(name, attackOptions)
    : name === pgdEntry.name
      ? pgdEntry.create(d, undefined)
      : needsRegistry(trainer, 'attack.name', name);
  const objective: ObjectiveFactory = lookup
    ? lookup.objective(objectiveName)
    : objectiveName === defaultObjective.name
      ? (o) => defaultObjective.create(o, undefined)
      : needsRegistry(trainer, 'attack.objective', objectiveName);
  const fixed = attack.fixedObjective;
  if (fixed !== undefined && (fixed !== objectiveName || options.te)) {
    const wanted = `'${objectiveName}'${options.te ? ' + the TE penalty' : ''}`;
    const orSetObjective = options.te ? '' : ` or set attack.objective to '${fixed}'`;
    throw new AtflowError(
      'CONFIG',
      `attack.name: '${name}' always maximises its own objective '${fixed}' ` +
        `and takes no other, but trainer '${trainer}' maximises ${wanted}; ` +
        `pick an attack that takes an objective (pgd, pgd-l2, fgsm, trades-kl)${orSetObjective}`,
      { field: 'attack.name', value: name, trainer, objective: objectiveName, fixedObjective: fixed },
    );
  }
  return { settings, name, objectiveName, attack, objective };
}

function needsRegistry(trainer: string, field: string, name: string): never {
  throw new AtflowError(
    'CONFIG',
    `${field}: trainer '${trainer}' was made without a registry, so it ` +
      `knows only its own defaults, not '${name}'; make it through one: ` +
      `registry.create('trainer', '${trainer}', options) (or createTrainer)`,
    { field, value: name, trainer },
  );
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
  if (!Number.isFinite(beta) || beta < 0)
    throw new AtflowError('CONFIG', `trainer '${trainer}': beta must be a finite number ≥ 0, got ${beta}`, {
      field: 'trainer.beta',
      value: beta,
    });
  return beta;
}
