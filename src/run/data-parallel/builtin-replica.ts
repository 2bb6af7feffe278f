import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { createModel } from '../../models';
import { createTrainer } from '../../algorithms/trainers';
import type { Trainer } from '../../algorithms/trainers/types';
import type { ReplicaSpec } from '../../config/replica';

/**
 * The replica builder of a pool created without a registry: the built-in models and trainers by name
 * (an unknown name is refused, listing the built-in ones). Runs in the worker thread.
 */
export function builtinReplica(spec: ReplicaSpec): { model: Model; trainer: Trainer } {
  if (spec.plugins.length) {
    throw new AtflowError('CONFIG', `data-parallel: the built-in replica builder cannot load plugins (${spec.plugins.map((p) => p.module).join(', ')}); pass the run's replica recipe (buildRun's parts.replica)`);
  }
  // The seed is irrelevant: every value is overwritten from the shared state before each step.
  const model = createModel(spec.model, { numClasses: spec.numClasses, inputShape: spec.inputShape, seed: 0 });
  return { model, trainer: createTrainer(spec.trainer, spec.trainerOptions) };
}

/** The built-in builder as a module reference (this file, without extension: .ts under tsx, .js in dist/). */
export const BUILTIN_REPLICA = { module: __filename.replace(/\.(ts|js)$/, ''), export: 'builtinReplica' } as const;
