import { z } from 'zod';
import type { NamedPart } from '../core/named-part';
import type { Source } from '../data/source';
import type { SourceName, SourceOptionsByName } from '../data';
import { cifar100SourceEntry, cifar10SourceEntry } from '../data/cifar';
import { fashionMnistSourceEntry, idxSourceEntry } from '../data/idx';
import { mnistSourceEntry } from '../data/mnist';
import { svhnSourceEntry } from '../data/svhn';
import { syntheticSourceEntry } from '../data/synthetic';
import { epochShufflePlannerEntry } from '../data/batch-plans';
import { MODEL_NAMES, createModel, type CreateModelOptions } from '../models';
import { apgdCeEntry, apgdDlrEntry } from '../algorithms/attacks/apgd';
import { cwEntry } from '../algorithms/attacks/cw-linf';
import { fgsmEntry } from '../algorithms/attacks/fgsm';
import { pgdEntry } from '../algorithms/attacks/pgd';
import { pgdL2Entry } from '../algorithms/attacks/pgd-l2';
import { tradesKlEntry } from '../algorithms/attacks/trades-kl';
import {
  ceObjectiveEntry,
  cwMarginObjectiveEntry,
  dlrObjectiveEntry,
  tradesKlObjectiveEntry,
  type ObjectiveFactory,
} from '../algorithms/objectives/by-name';
import { martEntry } from '../algorithms/trainers/mart';
import { pgdAtEntry } from '../algorithms/trainers/pgd-at';
import { standardEntry } from '../algorithms/trainers/standard';
import { tradesEntry } from '../algorithms/trainers/trades';
import { temporalEnsembleEntry } from '../algorithms/trainers/te';
import { sgdEntry } from '../algorithms/optim/sgd';
import { constantScheduleEntry, cosineScheduleEntry, multistepScheduleEntry, stepScheduleEntry } from '../algorithms/schedules/lr-schedule';
import type { Attack, AttackOptions } from '../algorithms/attacks/types';
import type { OperatorLookup, Trainer, TrainerOptions } from '../algorithms/trainers/types';
import { cropFlipAugmentationEntry, defaultAugmentationEntry, noAugmentationEntry } from '../operators/augment';
import { DEFAULT_EVALUATOR, pgdEvaluator } from '../evaluation/evaluator';
import { Registry, type Kind } from './registry';
import { configureOptions } from './kinds';

/**
 * A trainer's inner attack and objective, resolved by name in `registry` (so a user's own take part). The
 * attack is made with its own options, checked against its schema (errors name `attack.<field>`).
 */
export function lookupIn(registry: Registry): OperatorLookup {
  return {
    attack: (name, options) =>
      registry.create<Attack<AttackOptions>, unknown>(
        'attack',
        name,
        configureOptions(registry, 'attack', name, options, { field: 'attack', nameField: 'attack.name' }),
        'attack.name',
      ),
    objective: (name): ObjectiveFactory => {
      const factory = registry.factory<ReturnType<ObjectiveFactory>, Parameters<ObjectiveFactory>[0]>(
        'objective',
        name,
        'attack.objective',
      );
      return (options) => factory(options, registry);
    },
  };
}

function registerAll<T, O>(registry: Registry, kind: Kind, parts: readonly NamedPart<T, O>[]): void {
  for (const p of parts) registry.register<T, O>(kind, p.name, (o) => p.create(o, undefined), { options: p.options });
}

/** The built-in models take no options of their own from a config (`model` holds only their name). */
const NO_MODEL_OPTIONS = z.object({}).strict();

/**
 * Registers every built-in part below the run under its config name: sources, models, attacks,
 * objectives, trainers, TE, the optimiser, schedules, augmentations, the batch planner and the evaluator
 * (the sinks are added above, in run/default-registry.ts: they are the logs' layer). The only list of
 * what is built in; everything is looked up in the registry afterwards.
 */
export function registerBuiltins(registry: Registry): Registry {
  return registry.asOrigin('builtin', () => {
    registerAll<Source, never>(registry, 'source', [
      mnistSourceEntry,
      fashionMnistSourceEntry,
      idxSourceEntry,
      cifar10SourceEntry,
      cifar100SourceEntry,
      svhnSourceEntry,
      syntheticSourceEntry,
    ]);
    // WRN takes any depth/width by name (wrn-16-2, ...): the listed ones are registered, others when named (config/replica.ts)
    for (const name of MODEL_NAMES)
      registry.register('model', name, (o: CreateModelOptions) => createModel(name, o), { options: NO_MODEL_OPTIONS });
    registerAll(registry, 'attack', [fgsmEntry, pgdEntry, pgdL2Entry, tradesKlEntry, cwEntry, apgdCeEntry, apgdDlrEntry]);
    registerAll(registry, 'objective', [ceObjectiveEntry, tradesKlObjectiveEntry, cwMarginObjectiveEntry, dlrObjectiveEntry]);
    for (const p of [standardEntry, pgdAtEntry, tradesEntry, martEntry]) {
      registry.register<Trainer, TrainerOptions>('trainer', p.name, (o, r) => p.create(o, lookupIn(r)), { options: p.options });
    }
    registerAll(registry, 'ensemble', [temporalEnsembleEntry]);
    registerAll(registry, 'optimizer', [sgdEntry]);
    // in the order a config's error lists them
    registerAll(registry, 'schedule', [multistepScheduleEntry, stepScheduleEntry, cosineScheduleEntry, constantScheduleEntry]);
    registerAll(registry, 'augmentation', [defaultAugmentationEntry, noAugmentationEntry, cropFlipAugmentationEntry]);
    registerAll(registry, 'planner', [epochShufflePlannerEntry]);
    registry.register('evaluator', DEFAULT_EVALUATOR, pgdEvaluator);
  });
}

let builtins: Registry | null = null;
/** A registry of the built-ins, private to this module (never handed out, so nothing registers into it). */
function builtinRegistry(): Registry {
  return (builtins ??= registerBuiltins(new Registry()));
}

/**
 * A built-in source by name, from the registry of built-ins (reads its files now; synchronous). An unknown
 * name is the registry's error, listing the registered sources.
 */
export function createSource<N extends SourceName>(name: N, options?: SourceOptionsByName[N]): Source;
export function createSource(name: string, options?: Record<string, unknown>): Source;
export function createSource(name: string, options: Record<string, unknown> = {}): Source {
  const registry = builtinRegistry();
  return registry.create<Source, unknown>(
    'source',
    name,
    configureOptions(registry, 'source', name, options, { field: 'options', nameField: 'source', style: 'options' }),
  );
}

/** A built-in trainer by name, its inner attack and objective resolved in the registry of built-ins. */
export function createTrainer(name: string, options: TrainerOptions = {}): Trainer {
  return builtinRegistry().create<Trainer, TrainerOptions>('trainer', name, options);
}
