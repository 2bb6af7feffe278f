import 'reflect-metadata';
import { isBuiltin } from 'module';
import * as path from 'path';
import { Container, type BindingIdentifier } from 'inversify';
import type { z } from 'zod';
import { AtflowError, unknownName } from '../core/errors';

/**
 * Names are the extension point (DESIGN.md): every part a run is made of is a factory registered under
 * (kind, name) in one inversify container, built-ins and plugins alike. A config picks by name; a user
 * adds their own with `registry.register(kind, name, factory, { options })` without forking, or from a
 * module with `registry.use(modulePath, exportName)`, which data-parallel worker threads and `--workers`
 * child processes repeat (a factory registered in code cannot reach them).
 *
 * Each entry may bring the zod schema of the options a config gives it (`options`): a run checks the
 * config's fields against the schema of the entry it names before anything runs (config/kinds.ts), so
 * a plugin's attack or trainer takes options of its own and a misspelt one is refused, naming the field.
 */
export const KINDS = [
  'source',
  'model',
  'attack',
  'objective',
  'trainer',
  'ensemble',
  'optimizer',
  'schedule',
  'augmentation',
  'planner',
  'evaluator',
  'sink',
] as const;
export type Kind = (typeof KINDS)[number];

/** A factory gets its options and the registry creating it (to resolve the names it needs in turn). */

export type Factory<T = unknown, O = any> = (options: O, registry: Registry) => T;

/** What `register` takes beside the factory. */
export interface RegisterOptions {
  /**
   * The schema of the options a config gives this entry (its own fields of the config block that names
   * it: `attack` for an attack, `trainer` for a trainer, `data.options` for a source; see docs/plugins.md).
   * Checked, with defaults filled, before the factory is called; absent: the block is passed unchecked.
   */
  readonly options?: z.ZodTypeAny;
}

/** A plugin: the export of a module, a function that registers into the registry it is given. */
export interface PluginRef {
  /** Absolute path of the module (or a package name resolvable from the working directory). */
  readonly module: string;
  /** The exported function `(registry: Registry) => void`; default 'register'. */
  readonly export: string;
}

/** Where an entry came from: the built-ins, a plugin module (both reproducible elsewhere), or code in this process. */
export type Origin = 'builtin' | 'plugin' | 'code';

/** One binding of the container: the factory under (kind, name), with its options schema and origin. */
export interface RegistryEntry {
  readonly kind: Kind;
  readonly name: string;
  readonly factory: Factory;
  readonly options?: z.ZodTypeAny;
  readonly origin: Origin;
}

interface Bound extends RegistryEntry {
  binding?: BindingIdentifier;
}

/** The service of a kind; each entry is bound to it under its name. */
function kindToken(kind: Kind): symbol {
  return Symbol.for(`atflow:${kind}`);
}
/** The name every entry's binding also answers to, so that a kind's entries can be listed from the container. */
const EVERY_NAME = Symbol('atflow:every-name');

function checkKind(kind: string): asserts kind is Kind {
  if (!(KINDS as readonly string[]).includes(kind)) throw unknownName('kind', kind, KINDS);
}

/**
 * `module` or `module#export` (the CLI's `--plugin`, a config's `plugins`), resolved against `baseDir`:
 * a path (./x.js, /abs/x.js) is made absolute, anything else is a package name resolved from there.
 * A Node built-in module (`child_process#execSync`) is not a plugin and is refused before it is loaded.
 */
export function parsePluginRef(spec: string, baseDir: string = process.cwd()): PluginRef {
  const hash = spec.lastIndexOf('#');
  const mod = hash > 0 ? spec.slice(0, hash) : spec;
  const exp = hash > 0 ? spec.slice(hash + 1) : 'register';
  if (!mod || !exp)
    throw new AtflowError('CONFIG', `plugin '${spec}': expected <module> or <module>#<export>`, { field: 'plugins', value: spec });
  if (isBuiltin(mod)) throw notAPlugin(spec, mod);
  const isPath = mod.startsWith('.') || path.isAbsolute(mod);
  let resolved: string;
  try {
    resolved = require.resolve(isPath ? path.resolve(baseDir, mod) : mod, { paths: [baseDir] });
  } catch (e) {
    throw new AtflowError(
      'CONFIG',
      `plugin '${spec}': cannot find module '${isPath ? path.resolve(baseDir, mod) : mod}' (${(e as Error).message.split('\n')[0]})`,
      { field: 'plugins', value: spec },
    );
  }
  return { module: resolved, export: exp };
}

function notAPlugin(spec: string, mod: string): AtflowError {
  return new AtflowError(
    'CONFIG',
    `plugin '${spec}': '${mod}' is a Node built-in module, not a plugin; a ` +
      `plugin is a CommonJS file or package that exports (registry) => void ` +
      `(docs/plugins.md)`,
    { field: 'plugins', value: spec },
  );
}

export class Registry {
  /** The one container: every entry is a constant bound to its kind's service under its name. */
  readonly container = new Container();
  private readonly loaded: PluginRef[] = [];
  private registering: Origin = 'code';

  /** Registers (or replaces) a factory, with the schema of its config options. Returns this, for chaining. */
  register<T, O>(kind: Kind, name: string, factory: Factory<T, O>, how: RegisterOptions = {}): this {
    checkKind(kind);
    const previous = this.bound(kind, name);
    if (previous?.binding) this.container.unbindSync(previous.binding);
    const entry: Bound = { kind, name, factory: factory as Factory, options: how.options, origin: this.registering };
    entry.binding = this.container
      .bind<Bound>(kindToken(kind))
      .toConstantValue(entry)
      .when((m) => m.name === name || m.name === EVERY_NAME)
      .getIdentifier();
    return this;
  }

  /**
   * Loads a plugin: requires `modulePath` (CommonJS; a path or a package name) and calls its export
   * `exportName` with this registry. Recorded (see `plugins`), so that worker threads and child
   * processes register the same names from the same module. Loading one twice is a no-op.
   */
  use(modulePath: string, exportName = 'register'): this {
    if (isBuiltin(modulePath)) throw notAPlugin(`${modulePath}#${exportName}`, modulePath);
    const ref = path.isAbsolute(modulePath) ? { module: modulePath, export: exportName } : parsePluginRef(`${modulePath}#${exportName}`);
    if (this.loaded.some((p) => p.module === ref.module && p.export === ref.export)) return this;
    let mod: Record<string, unknown>;
    try {
      mod = require(ref.module);
    } catch (e) {
      throw new AtflowError('CONFIG', `plugin ${ref.module}: cannot load it: ${(e as Error).message.split('\n')[0]}`, {
        field: 'plugins',
        module: ref.module,
      });
    }
    const fn = mod[ref.export];
    if (typeof fn !== 'function') {
      const exported = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new AtflowError(
        'CONFIG',
        `plugin ${ref.module}: no exported function '${ref.export}' (it ` +
          `exports ${exported.length ? exported.map((k) => `'${k}'`).join(', ') : 'no functions'}); ` +
          `a plugin exports (registry) => void`,
        {
          field: 'plugins',
          module: ref.module,
          export: ref.export,
        },
      );
    }
    try {
      this.asOrigin('plugin', () => (fn as (r: Registry) => void)(this));
    } catch (e) {
      if (e instanceof AtflowError) throw e;
      throw new AtflowError('CONFIG', `plugin ${ref.module}#${ref.export}: registering failed: ${(e as Error)?.message ?? String(e)}`, {
        field: 'plugins',
        module: ref.module,
        export: ref.export,
      });
    }
    this.loaded.push(ref);
    return this;
  }

  /** The plugins loaded with `use`, in order. */
  get plugins(): readonly PluginRef[] {
    return [...this.loaded];
  }

  /** Runs `register` with every entry it makes marked as `origin` (registerBuiltins marks the built-ins). */
  asOrigin(origin: Origin, register: () => void): this {
    const before = this.registering;
    this.registering = origin;
    try {
      register();
    } finally {
      this.registering = before;
    }
    return this;
  }

  /** The entry under (kind, name), undefined when there is none. */
  entry(kind: Kind, name: string): RegistryEntry | undefined {
    return this.bound(kind, name);
  }

  private bound(kind: Kind, name: string): Bound | undefined {
    const token = kindToken(kind);
    return this.container.isBound(token, { name }) ? this.container.get<Bound>(token, { name }) : undefined;
  }

  /** Every entry of a kind, in the order they were registered (a replaced entry counts as registered last). */
  entries(kind: Kind): RegistryEntry[] {
    const token = kindToken(kind);
    return this.container.isBound(token, { name: EVERY_NAME }) ? this.container.getAll<Bound>(token, { name: EVERY_NAME }) : [];
  }

  /** Where (kind, name) was registered from; undefined when it is not registered. */
  originOf(kind: Kind, name: string): Origin | undefined {
    return this.entry(kind, name)?.origin;
  }

  /** The entries registered in code (not built in, not from a plugin module): another process or thread cannot rebuild them. */
  registeredInCode(): { kind: Kind; name: string }[] {
    return KINDS.flatMap((kind) =>
      this.entries(kind)
        .filter((e) => e.origin === 'code')
        .map((e) => ({ kind, name: e.name })),
    );
  }

  has(kind: Kind, name: string): boolean {
    return this.entry(kind, name) !== undefined;
  }

  /** The registered names of a kind, sorted. */
  list(kind: Kind): string[] {
    return this.entries(kind)
      .map((e) => e.name)
      .sort();
  }

  /** The schema of the options a config gives (kind, name), if it declared one; an unknown name is an error. */
  optionsOf(kind: Kind, name: string, field?: string): z.ZodTypeAny | undefined {
    return this.resolve(kind, name, field).options;
  }

  /**
   * The factory for (kind, name). An unknown name is an error listing the registered ones, led by the
   * config field that named it when `field` is given ("attack.name: unknown attack 'pgdd' ...").
   */
  factory<T, O>(kind: Kind, name: string, field?: string): Factory<T, O> {
    return this.resolve(kind, name, field).factory as Factory<T, O>;
  }

  /** Makes (kind, name) from `options` (already checked: see config/kinds.ts). */
  create<T, O>(kind: Kind, name: string, options: O, field?: string): T {
    return this.factory<T, O>(kind, name, field)(options, this);
  }

  private resolve(kind: Kind, name: string, field?: string): RegistryEntry {
    checkKind(kind);
    const entry = this.entry(kind, name);
    if (!entry) throw unknownName(kind, name, this.list(kind), field);
    return entry;
  }
}
