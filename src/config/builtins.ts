import { parsePluginRef, Registry } from './registry';
import { SOURCE_NAMES, createSource } from '../data';
import { MODEL_NAMES, createModel } from '../models';
import { ATTACKS } from '../algorithms/attacks';
import { TRAINERS } from '../algorithms/trainers';
import { makeLrSchedule } from '../algorithms/schedules/lr-schedule';
import { OBJECTIVES, type ObjectiveFactory } from '../algorithms/objectives/by-name';
import type { Attack, AttackOptions } from '../algorithms/attacks/types';
import type { OperatorLookup, TrainerOptions } from '../algorithms/trainers/types';
import { DEFAULT_EVALUATOR, pgdEvaluator } from '../evaluation/evaluator';

interface ScheduleOptions {
  readonly lr: number;
  readonly milestones: readonly number[];
  readonly gamma: number;
  readonly stepSize: number;
  readonly tMax: number;
}

/** A trainer's inner attack and objective, resolved by name in `registry` (so a user's own take part). */
export function lookupIn(registry: Registry): OperatorLookup {
  return {
    attack: (name) => registry.create<Attack<AttackOptions>, unknown>('attack', name, {}),
    objective: (name): ObjectiveFactory => {
      const factory = registry.factory<ReturnType<ObjectiveFactory>, Parameters<ObjectiveFactory>[0]>('objective', name);
      return (options) => factory(options, registry);
    },
  };
}

/**
 * Registers every built-in source, model, attack, objective, trainer, evaluator and schedule under its
 * config name (the sinks are added above, in run/default-registry.ts: they are the logs' layer).
 */
export function registerBuiltins(registry: Registry): Registry {
  return registry.asOrigin('builtin', () => {
    for (const name of SOURCE_NAMES) registry.register('source', name, (o: Record<string, unknown>) => createSource(name, o));
    // WRN takes any depth/width by name (wrn-16-2, ...): the listed ones are registered, others via createModel.
    for (const name of MODEL_NAMES) registry.register('model', name, (o: Parameters<typeof createModel>[1]) => createModel(name, o));
    for (const [name, attack] of Object.entries(ATTACKS)) registry.register('attack', name, () => attack);
    for (const [name, factory] of Object.entries(OBJECTIVES)) registry.register('objective', name, factory);
    for (const [name, factory] of Object.entries(TRAINERS)) registry.register('trainer', name, (o: TrainerOptions, r) => factory(o, lookupIn(r)));
    registry.register('schedule', 'constant', (o: ScheduleOptions) => makeLrSchedule({ type: 'constant', lr: o.lr }));
    registry.register('schedule', 'multistep', (o: ScheduleOptions) => makeLrSchedule({ type: 'multistep', lr: o.lr, milestones: o.milestones, gamma: o.gamma }));
    registry.register('schedule', 'step', (o: ScheduleOptions) => makeLrSchedule({ type: 'step', lr: o.lr, stepSize: o.stepSize, gamma: o.gamma }));
    registry.register('evaluator', DEFAULT_EVALUATOR, pgdEvaluator);
    registry.register('schedule', 'cosine', (o: ScheduleOptions) => makeLrSchedule({ type: 'cosine', lr: o.lr, tMax: o.tMax }));
  });
}
