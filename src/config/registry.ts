import 'reflect-metadata';
import * as path from 'path';
import { Container } from 'inversify';
import { AtflowError, unknownName } from '../core/errors';

/**
 * Names are the extension point (DESIGN.md): every source, model, attack, objective, trainer, schedule,
 * evaluator and sink is a factory registered under (kind, name) in one inversify container. A config
 * picks by name; a user adds their own with `registry.register(kind, name, factory)` without forking,
 * or from a module with `registry.use(modulePath, exportName)`, which data-parallel worker threads and
 * `--workers` child processes repeat (a factory registered in code cannot reach them).
 */
export const KINDS = ['source', 'model', 'attack', 'objective', 'trainer', 'schedule', 'evaluator', 'sink'] as const;
export type Kind = (typeof KINDS)[number];

/** A factory gets its options and the registry creating it (to resolve the names it needs in turn). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Factory<T = unknown, O = any> = (options: O, registry: Registry) => T;

/** A plugin: the export of a module, a function that registers into the registry it is given. */
export interface PluginRef {
  /** Absolute path of the module (or a package name resolvable from the working directory). */
  readonly module: string;
  /** The exported function `(registry: Registry) => void`; default 'register'. */
  readonly export: string;
}

/** Where an entry came from: the built-ins, a plugin module (both reproducible elsewhere), or code in this process. */
export type Origin = 'builtin' | 'plugin' | 'code';

function token(kind: Kind, name: string): symbol {
  return Symbol.for(`atflow:${kind}:${name}`);
}

/**
 * `module` or `module#export` (the CLI's `--plugin`, a config's `plugins`), resolved against `baseDir`:
 * a path (./x.js, /abs/x.js) is made absolute, anything else is a package name resolved from there.
 */
export function parsePluginRef(spec: string, baseDir: string = process.cwd()): PluginRef {
  const hash = spec.lastIndexOf('#');
  const mod = hash > 0 ? spec.slice(0, hash) : spec;
  const exp = hash > 0 ? spec.slice(hash + 1) : 'register';
  if (!mod || !exp) throw new AtflowError('CONFIG', `plugin '${spec}': expected <module> or <module>#<export>`, { field: 'plugins', value: spec });
  const isPath = mod.startsWith('.') || path.isAbsolute(mod);
  let resolved: string;
  try {
    resolved = require.resolve(isPath ? path.resolve(baseDir, mod) : mod, { paths: [baseDir] });
  } catch (e) {
    throw new AtflowError('CONFIG', `plugin '${spec}': cannot find module '${isPath ? path.resolve(baseDir, mod) : mod}' (${(e as Error).message.split('\n')[0]})`, { field: 'plugins', value: spec });
  }
  return { module: resolved, export: exp };
}

export class Registry {
  readonly container = new Container();
  private readonly names = new Map<Kind, Set<string>>(KINDS.map((k) => [k, new Set<string>()]));
  private readonly origins = new Map<string, Origin>();
  private readonly loaded: PluginRef[] = [];
  private registering: Origin = 'code';

  /** Registers (or replaces) a factory. Returns this, for chaining. */
  register<T, O>(kind: Kind, name: string, factory: Factory<T, O>): this {
    const t = token(kind, name);
    if (this.container.isBound(t)) this.container.unbind(t);
    this.container.bind<Factory<T, O>>(t).toConstantValue(factory);
    this.names.get(kind)!.add(name);
    this.origins.set(`${kind}:${name}`, this.registering);
    return this;
  }

  /**
   * Loads a plugin: requires `modulePath` (CommonJS; a path or a package name) and calls its export
   * `exportName` with this registry. Recorded (see `plugins`), so that worker threads and child
   * processes register the same names from the same module. Loading one twice is a no-op.
   */
  use(modulePath: string, exportName = 'register'): this {
    const ref = path.isAbsolute(modulePath) ? { module: modulePath, export: exportName } : parsePluginRef(`${modulePath}#${exportName}`);
    if (this.loaded.some((p) => p.module === ref.module && p.export === ref.export)) return this;
    let mod: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(ref.module);
    } catch (e) {
      throw new AtflowError('CONFIG', `plugin ${ref.module}: cannot load it: ${(e as Error).message.split('\n')[0]}`, { field: 'plugins', module: ref.module });
    }
    const fn = mod[ref.export];
    if (typeof fn !== 'function') {
      const exported = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new AtflowError('CONFIG', `plugin ${ref.module}: no exported function '${ref.export}' (it exports ${exported.length ? exported.map((k) => `'${k}'`).join(', ') : 'no functions'}); a plugin exports (registry) => void`, {
        field: 'plugins',
        module: ref.module,
        export: ref.export,
      });
    }
    this.asOrigin('plugin', () => (fn as (r: Registry) => void)(this));
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

  /** Where (kind, name) was registered from; undefined when it is not registered. */
  originOf(kind: Kind, name: string): Origin | undefined {
    return this.origins.get(`${kind}:${name}`);
  }

  /** The entries registered in code (not built in, not from a plugin module): another process or thread cannot rebuild them. */
  registeredInCode(): { kind: Kind; name: string }[] {
    return [...this.origins].filter(([, o]) => o === 'code').map(([k]) => ({ kind: k.slice(0, k.indexOf(':')) as Kind, name: k.slice(k.indexOf(':') + 1) }));
  }

  has(kind: Kind, name: string): boolean {
    return this.names.get(kind)!.has(name);
  }

  /** The registered names of a kind, sorted. */
  list(kind: Kind): string[] {
    return [...this.names.get(kind)!].sort();
  }

  /** The factory for (kind, name); an unknown name is an error listing the registered ones. */
  factory<T, O>(kind: Kind, name: string): Factory<T, O> {
    if (!this.has(kind, name)) throw unknownName(kind, name, this.list(kind));
    return this.container.get<Factory<T, O>>(token(kind, name));
  }

  create<T, O>(kind: Kind, name: string, options: O): T {
    return this.factory<T, O>(kind, name)(options, this);
  }
}
