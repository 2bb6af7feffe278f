import type { Model } from '../core/model';
import type { ReplicaRecipe, ReplicaSpec } from '../operators/data-parallel/protocol';
import type { Trainer, TrainerOptions } from '../operators/trainers/types';
import { createModel } from '../models';
import { defaultRegistry } from './default-registry';
import type { Kind, Registry } from './registry';

/**
 * The run's replica builder, in a data-parallel worker thread: the default registry plus the run's
 * plugins (the same modules, registered in the same order), then the model and the trainer by name.
 * A name the plugins do not register fails with the registry's "unknown trainer 'x'; registered: ..."
 * error, which the pool reports naming the worker: it is never swapped for a built-in.
 */
export function registryReplica(spec: ReplicaSpec): { model: Model; trainer: Trainer } {
  const registry = defaultRegistry();
  for (const p of spec.plugins) registry.use(p.module, p.export);
  // The seed is irrelevant: every value is overwritten from the shared state before each step.
  const model = createModelByName(registry, spec.model, { numClasses: spec.numClasses, inputShape: [...spec.inputShape] as [number, number, number], seed: 0 });
  const trainer = registry.create<Trainer, TrainerOptions>('trainer', spec.trainer, spec.trainerOptions);
  return { model, trainer };
}

/**
 * How workers rebuild what a run built from `registry`: this file's `registryReplica` with the registry's
 * plugins. `uses` are the names the replica resolves (model, trainer, inner attack and objective); one
 * registered in code in this process cannot be rebuilt there, and is named in `unportable`.
 */
export function replicaRecipe(registry: Registry, uses: readonly [Kind, string][]): ReplicaRecipe {
  const inCode = uses.filter(([kind, name]) => registry.originOf(kind, name) === 'code').map(([kind, name]) => `${kind} '${name}'`);
  return {
    builder: { module: __filename.replace(/\.(ts|js)$/, ''), export: 'registryReplica' },
    plugins: registry.plugins,
    unportable: inCode.length ? `${inCode.join(', ')} ${inCode.length > 1 ? 'were' : 'was'} registered in code (registry.register), which worker threads cannot repeat` : null,
  };
}

/** A model by name through the registry; any wrn-D-K works by name too (createModel parses it). */
export function createModelByName(registry: Registry, name: string, options: { numClasses: number; inputShape: [number, number, number]; seed: number }): Model {
  return !registry.has('model', name) && /^wrn-\d+-\d+$/.test(name) ? createModel(name, options) : registry.create<Model, typeof options>('model', name, options);
}
