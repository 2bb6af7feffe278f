import type { z } from 'zod';

/**
 * A built-in part under its config name, as config/builtins.ts registers it into the registry (the
 * only place names are looked up): `options` is the zod schema of what a config gives it (checked, with
 * defaults filled, before it is made), `create` makes it from those options and what the run adds
 * (`context`: the model's shape, the trainer's lookup, ...). A plugin registers the same three things
 * with `registry.register(kind, name, factory, { options })`.
 */
export interface NamedPart<T, O = never, C = void> {
  readonly name: string;
  /** Absent: a config gives it nothing (objectives, evaluators and sinks take only what the run hands them). */
  readonly options?: z.ZodTypeAny;
  create(options: O, context: C): T;
}
