import 'reflect-metadata';
import { Container } from 'inversify';
import { unknownName } from '../core/errors';

/**
 * Names are the extension point (DESIGN.md): every source, model, attack, objective, trainer, schedule,
 * evaluator and sink is a factory registered under (kind, name) in one inversify container. A config
 * picks by name; a user adds their own with `registry.register(kind, name, factory)` without forking.
 */
export const KINDS = ['source', 'model', 'attack', 'objective', 'trainer', 'schedule', 'evaluator', 'sink'] as const;
export type Kind = (typeof KINDS)[number];

/** A factory gets its options and the registry creating it (to resolve the names it needs in turn). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Factory<T = unknown, O = any> = (options: O, registry: Registry) => T;

function token(kind: Kind, name: string): symbol {
  return Symbol.for(`atflow:${kind}:${name}`);
}

export class Registry {
  readonly container = new Container();
  private readonly names = new Map<Kind, Set<string>>(KINDS.map((k) => [k, new Set<string>()]));

  /** Registers (or replaces) a factory. Returns this, for chaining. */
  register<T, O>(kind: Kind, name: string, factory: Factory<T, O>): this {
    const t = token(kind, name);
    if (this.container.isBound(t)) this.container.unbind(t);
    this.container.bind<Factory<T, O>>(t).toConstantValue(factory);
    this.names.get(kind)!.add(name);
    return this;
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
