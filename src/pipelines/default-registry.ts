import { Registry } from './registry';
import { SOURCE_NAMES, createSource } from '../sources';
import { MODEL_NAMES, createModel } from '../models';
import { ATTACKS } from '../operators/attacks';
import { TRAINERS } from '../operators/trainers';
import { makeLrSchedule } from '../operators/schedules/lr-schedule';
import type { TrainerOptions } from '../operators/trainers/types';
import { DEFAULT_EVALUATOR, pgdEvaluator } from './epoch/evaluator';

interface ScheduleOptions {
  readonly lr: number;
  readonly milestones: readonly number[];
  readonly gamma: number;
  readonly stepSize: number;
  readonly tMax: number;
}

/** Registers every built-in source, model, attack, trainer, evaluator and schedule under its config name. */
export function registerBuiltins(registry: Registry): Registry {
  for (const name of SOURCE_NAMES) registry.register('source', name, (o: Record<string, unknown>) => createSource(name, o));
  // WRN takes any depth/width by name (wrn-16-2, ...): the listed ones are registered, others via createModel.
  for (const name of MODEL_NAMES) registry.register('model', name, (o: Parameters<typeof createModel>[1]) => createModel(name, o));
  for (const [name, attack] of Object.entries(ATTACKS)) registry.register('attack', name, () => attack);
  for (const [name, factory] of Object.entries(TRAINERS)) registry.register('trainer', name, (o: TrainerOptions) => factory(o));
  registry.register('schedule', 'constant', (o: ScheduleOptions) => makeLrSchedule({ type: 'constant', lr: o.lr }));
  registry.register('schedule', 'multistep', (o: ScheduleOptions) => makeLrSchedule({ type: 'multistep', lr: o.lr, milestones: o.milestones, gamma: o.gamma }));
  registry.register('schedule', 'step', (o: ScheduleOptions) => makeLrSchedule({ type: 'step', lr: o.lr, stepSize: o.stepSize, gamma: o.gamma }));
  registry.register('evaluator', DEFAULT_EVALUATOR, pgdEvaluator);
  registry.register('schedule', 'cosine', (o: ScheduleOptions) => makeLrSchedule({ type: 'cosine', lr: o.lr, tMax: o.tMax }));
  return registry;
}

/** A registry with every built-in registered. */
export function defaultRegistry(): Registry {
  return registerBuiltins(new Registry());
}
