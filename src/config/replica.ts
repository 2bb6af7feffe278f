import type { Model } from '../core/model';
import type { Trainer, TrainerOptions } from '../algorithms/trainers/types';
import { createModel } from '../models';
import { registerBuiltins } from './builtins';
import { Registry, type Kind } from './registry';


/** A module's named export, loaded by path in a worker thread (a function, structured-cloneable as a reference). */
export interface ModuleExport {
  readonly module: string;
  readonly export: string;
}

/**
 * How a worker rebuilds the run's model and trainer: `builder` is called with the ReplicaSpec and
 * returns them; `plugins` are the registry's plugin modules, which the builder registers first. The
 * built-in builder (builtin-replica.ts) knows only the built-in tables; the run's (pipelines/replica.ts)
 * rebuilds the run's registry. `unportable` names what the run uses that no module can rebuild
 * (registered in code): more than one worker is then refused with it.
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
