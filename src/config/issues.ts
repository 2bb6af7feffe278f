import { type z } from 'zod';
import { didYouMean } from '../core/errors';

/**
 * A config problem in words: the dotted field, what is wrong, and what is allowed. The spec's shape
 * (spec.ts) and each part's own options (kinds.ts) are reported the same way.
 */

/** A config value as an error shows it: JSON, shortened; Infinity and NaN by name (JSON would print null). */
export function shownValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

export function valueAt(obj: unknown, p: readonly (string | number)[]): unknown {
  let cur: unknown = obj;
  for (const k of p) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/**
 * Schemas are told apart by their zod type name, not `instanceof`: a plugin's schema may come from its
 * own copy of zod (v3).
 */
type AnySchema = {
  _def: { typeName?: string; innerType?: AnySchema; schema?: AnySchema; options?: AnySchema[]; valueType?: AnySchema; type?: AnySchema };
  shape?: Record<string, AnySchema>;
};
const kindOf = (s: AnySchema | undefined) => s?._def?.typeName;

function unwrap(s: AnySchema): AnySchema {
  for (;;) {
    const t = kindOf(s);
    if ((t === 'ZodDefault' || t === 'ZodOptional' || t === 'ZodNullable') && s._def.innerType) s = s._def.innerType;
    else if (t === 'ZodEffects' && s._def.schema) s = s._def.schema;
    else if (t === 'ZodUnion' && s._def.options) s = s._def.options.find((o) => kindOf(unwrap(o)) === 'ZodObject') ?? s._def.options[0];
    else return s;
  }
}

/** The keys an object schema declares at `p` (for "allowed: ..." and "did you mean"); [] where there is no object. */
export function schemaKeysAt(schema: z.ZodTypeAny, p: readonly (string | number)[]): string[] {
  let s: AnySchema | undefined = unwrap(schema as unknown as AnySchema);
  for (const k of p) {
    const t = kindOf(s);
    if (t === 'ZodObject') s = s!.shape?.[k as string];
    else if (t === 'ZodRecord') s = s!._def.valueType;
    else if (t === 'ZodArray') s = s!._def.type;
    else return [];
    if (!s) return [];
    s = unwrap(s);
  }
  return kindOf(s) === 'ZodObject' && s!.shape ? Object.keys(s!.shape) : [];
}

/** How a zod issue is told: `at` prefixes its path (the config field of the block it was found in). */
export interface IssueContext {
  /** The value the schema checked. */
  readonly input: unknown;
  /** The config path of `input` ([] for the whole config). */
  readonly at: readonly string[];
  /** The keys allowed at a path inside `input` (listed after an unknown one). */
  readonly allowedAt: (p: readonly (string | number)[]) => string[];
  /** More names a misspelt key may have meant (other entries' keys), beside the allowed ones. */
  readonly hintsAt?: (p: readonly (string | number)[]) => string[];
}

/** One line per problem of `iss`: "attack.stpes: unknown field (did you mean 'attack.steps'?); allowed: ...". */
export function issueLines(iss: z.ZodIssue, ctx: IssueContext): string[] {
  const full = [...ctx.at, ...iss.path];
  const where = full.length ? full.join('.') : '(top level)';
  if (iss.code === 'unrecognized_keys') {
    const allowed = ctx.allowedAt(iss.path);
    const hints = [...allowed, ...(ctx.hintsAt?.(iss.path) ?? [])];
    return iss.keys.map((k) => {
      const hint = didYouMean(k, hints);
      return (
        `${[...full, k].join('.')}: unknown ` +
        `field${hint ? ` (did you mean '${[...full, hint].join('.')}'?)` : ''}; ` +
        `allowed: ${allowed.join(', ')}`
      );
    });
  }
  const got = valueAt(ctx.input, iss.path);
  if (iss.code === 'invalid_enum_value') {
    const hint = didYouMean(String(got), iss.options.map(String));
    return [`${where}: ${shownValue(got)} is not allowed${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${iss.options.join(', ')}`];
  }
  if (iss.code === 'invalid_type' && iss.received === 'undefined') return [`${where}: required ${iss.expected} is missing`];
  return [`${where}: ${iss.message}${got !== undefined ? ` (got ${shownValue(got)})` : ''}`];
}

/**
 * Every number of a config must be finite: JSON's 1e999 (and `--set x=1e999`) parses to Infinity, which
 * no setting means and zod's number() accepts. One walk over the raw config, naming each such field.
 */
export function nonFiniteNumbers(v: unknown, at: readonly (string | number)[] = []): string[] {
  if (typeof v === 'number') {
    return Number.isFinite(v)
      ? []
      : [
          `${at.join('.') || '(top level)'}: expected a finite number, got ${String(v)} ` +
            `(a JSON number beyond ±1.8e308, such as 1e999, reads as Infinity)`,
        ];
  }
  if (Array.isArray(v)) return v.flatMap((x, i) => nonFiniteNumbers(x, [...at, i]));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => nonFiniteNumbers(x, [...at, k]));
  return [];
}
