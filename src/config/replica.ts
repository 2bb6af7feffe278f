import type { Model } from '../core/model';
import type { Trainer, TrainerOptions } from '../algorithms/trainers/types';
import { registerBuiltins } from './builtins';
import { ensureWrn } from './kinds';
import { Registry, type Kind } from './registry';

/** A module's named export, loaded by path in a worker thread (a function, structured-cloneable as a reference). */
export interface ModuleExport {
  readonly module: string;
  readonly export: string;
}

/**
 * How a worker rebuilds the run's model and trainer: `builder` is called with the ReplicaSpec and
 * returns them; `plugins` are the registry's plugin modules, which the builder registers first (this
 * file's registryReplica, REGISTRY_REPLICA, rebuilds the run's registry; a pool made without a recipe
 * uses it with no plugins: the built-ins). `unportable` names what the run uses that no module can
 * rebuild (registered in code): more than one worker is then refused with it.
 */
export interface ReplicaRecipe {
  readonly builder: ModuleExport;
  readonly plugins: readonly ModuleExport[];
  readonly unportable?: string | null;
}

export interface ReplicaSpec {
  /** Model by registry name ('cnn-small', 'preact-resnet18', 'wrn-34-10', a plugin's, ...). */
  readonly model: string;
  readonly numClasses: number;
  readonly inputShape: readonly [number, number, number];
  /** Trainer by registry name + options (src/algorithms/trainers): the same objects as the single-thread path. */
  readonly trainer: string;
  readonly trainerOptions: TrainerOptions;
  readonly backend: 'wasm' | 'cpu';
  readonly builder: ModuleExport;
  readonly plugins: readonly ModuleExport[];
}

/**
 * The run's replica builder, in a data-parallel worker thread: the default registry plus the run's
 * plugins (the same modules, registered in the same order), then the model and the trainer by name.
 * A name the plugins do not register fails with the registry's "unknown trainer 'x'; registered: ..."
 * error, which the pool reports naming the worker: it is never swapped for a built-in.
 */
export function registryReplica(spec: ReplicaSpec): { model: Model; trainer: Trainer } {
  const registry = registerBuiltins(new Registry());
  for (const p of spec.plugins) registry.use(p.module, p.export);
  // The seed is irrelevant: every value is overwritten from the shared state before each step.
  const model = createModelByName(registry, spec.model, {
    numClasses: spec.numClasses,
    inputShape: [...spec.inputShape] as [number, number, number],
    seed: 0,
  });
  const trainer = registry.create<Trainer, TrainerOptions>('trainer', spec.trainer, spec.trainerOptions);
  return { model, trainer };
}

/** This file's `registryReplica` as a module reference (this file without extension: .ts under ts-jest, .js in dist/). */
export const REGISTRY_REPLICA: ModuleExport = { module: __filename.replace(/\.(ts|js)$/, ''), export: 'registryReplica' };

/**
 * How workers rebuild what a run built from `registry`: this file's `registryReplica` with the registry's
 * plugins. `uses` are the names the replica resolves (model, trainer, inner attack and objective); one
 * registered in code in this process cannot be rebuilt there, and is named in `unportable`.
 */
export function replicaRecipe(registry: Registry, uses: readonly [Kind, string][]): ReplicaRecipe {
  const inCode = uses.filter(([kind, name]) => registry.originOf(kind, name) === 'code').map(([kind, name]) => `${kind} '${name}'`);
  return {
    builder: REGISTRY_REPLICA,
    plugins: registry.plugins,
    unportable: inCode.length
      ? `${inCode.join(', ')} ${inCode.length > 1 ? 'were' : 'was'} registered ` +
        `in code (registry.register), which worker threads cannot repeat`
      : null,
  };
}

/** A model by name through the registry; any wrn-D-K is a built-in name too (registered when named). */
export function createModelByName(
  registry: Registry,
  name: string,
  options: { numClasses: number; inputShape: [number, number, number]; seed: number },
): Model {
  ensureWrn(registry, name);
  return registry.create<Model, typeof options>('model', name, options, 'model.name');
}
