import { type z } from 'zod';
import { AtflowError, didYouMean, unknownName } from '../core/errors';
import { createModel, type CreateModelOptions } from '../models';
import { pgdEntry } from '../algorithms/attacks/pgd';
import { temporalEnsembleEntry } from '../algorithms/trainers/te';
import { sgdEntry } from '../algorithms/optim/sgd';
import { epochShufflePlannerEntry } from '../data/batch-plans';
import { cropFlipAugmentationEntry } from '../operators/augment';
import { DEFAULT_EVALUATOR } from '../evaluation/evaluator';
import { issueLines, schemaKeysAt, shownValue, valueAt } from './issues';
import type { Kind, Registry } from './registry';
import type { RunSpec } from './spec';

/**
 * Which config field names which registry entry, and which block holds that entry's own options: the
 * map from a config to the registry. A config is checked against the schema of each entry it names
 * (`registry.register(kind, name, factory, { options })`): a field no entry of the kind reads is an
 * "unknown field (did you mean …)", one that only other entries read is refused naming them.
 */

/** Where a kind's entry is named in a config and where its options are. */
export interface OptionsPlace {
  /** The config field of the options block ('attack', 'data.options'), for error messages. */
  readonly field: string;
  /** The config field that names the entry ('attack.name', 'data.source'). */
  readonly nameField: string;
  /** 'fields': the block's keys are config fields ("unknown field"); 'options': an options object ("source 'idx': unknown option"). */
  readonly style?: 'fields' | 'options';
  /** Keys of the block that are not the entry's options, listed before / after them in "allowed: ...". */
  readonly before?: readonly string[];
  readonly after?: readonly string[];
  /** Keys the entry's block may also hold at a path inside it, for "did you mean" (TE's own, under trainer.te). */
  readonly alsoAt?: (p: readonly (string | number)[]) => string[];
}

/** A problem of a config's kind-owned fields; `ignored` when another entry of the kind reads the field. */
interface KindIssue {
  readonly message: string;
  readonly details: Record<string, unknown>;
  readonly ignored?: boolean;
  readonly code?: 'CONFIG' | 'UNKNOWN_NAME';
}

function readersOf(registry: Registry, kind: Kind, except: string, p: readonly (string | number)[], key: string): string[] {
  return registry
    .entries(kind)
    .filter((e) => e.name !== except && e.options !== undefined && schemaKeysAt(e.options, p).includes(key))
    .map((e) => e.name);
}

/**
 * How to drop a field a config (or its variant) sets, from the command line: a --set of the name alone keeps
 * the object's other fields, so say that setting the whole object replaces them.
 */
function replaceWhole(nameField: string, name: string): string {
  if (!nameField.endsWith('.name')) return '';
  const object = nameField.slice(0, -'.name'.length);
  return ` (on the command line, --set '${object}={"name":"${name}"}' replaces the whole ${object} object)`;
}

function quotedList(names: readonly string[]): string {
  const q = names.map((n) => `'${n}'`);
  return q.length > 1 ? `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}` : q[0];
}

/** The problems of `raw` as the options of entry (kind, name), against its schema; the parsed value when there are none. */
function optionIssues(
  registry: Registry,
  kind: Kind,
  name: string,
  raw: unknown,
  place: OptionsPlace,
): { issues: KindIssue[]; value?: unknown } {
  const schema = registry.optionsOf(kind, name, place.nameField);
  if (!schema) return { issues: [], value: raw };
  const res = schema.safeParse(raw);
  if (res.success) return { issues: [], value: res.data };
  const at = place.field.split('.');
  const issues: KindIssue[] = [];
  for (const iss of res.error.issues) {
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        const field = [...at, ...iss.path, key].join('.');
        const value = valueAt(raw, [...iss.path, key]);
        const readers = readersOf(registry, kind, name, iss.path, key);
        if (readers.length) {
          issues.push({
            ignored: true,
            message:
              `${field}: ${kind} '${name}' ignores ${key} (got ` +
              `${shownValue(value)}); only ${quotedList(readers)} ${readers.length > 1 ? 'read' : 'reads'} ` +
              `it: remove the field or change ${place.nameField}${replaceWhole(place.nameField, name)}`,
            details: { field, value, [kind]: name, acceptedBy: readers },
          });
          continue;
        }
        const own = schemaKeysAt(schema, iss.path);
        const allowed = iss.path.length
          ? [...own, ...(place.alsoAt?.(iss.path) ?? [])]
          : [...(place.before ?? []), ...own, ...(place.after ?? [])];
        const others = registry.entries(kind).flatMap((e) => (e.options ? schemaKeysAt(e.options, iss.path) : []));
        if (place.style === 'options') {
          const hint = didYouMean(key, [...allowed, ...others]);
          issues.push({
            message:
              `${field}: ${kind} '${name}': unknown option ` +
              `'${key}'${hint ? ` (did you mean '${hint}'?)` : ''}; options: ${allowed.join(', ')}`,
            details: { field, value, [kind]: name, allowed },
          });
        } else {
          for (const message of issueLines({ ...iss, keys: [key] }, { input: raw, at, allowedAt: () => allowed, hintsAt: () => others }))
            issues.push({ message, details: { field, value, [kind]: name, allowed } });
        }
      }
      continue;
    }
    for (const message of issueLines(iss, { input: raw, at, allowedAt: (p) => schemaKeysAt(schema, p) })) {
      issues.push({ message, details: { field: [...at, ...iss.path].join('.'), [kind]: name } });
    }
  }
  return { issues };
}

/**
 * `raw` checked as the options of entry (kind, name): the schema's output (defaults filled), or a CONFIG
 * error naming each field. Used wherever a part is made from options (a run's parts, a trainer's inner
 * attack, createSource); an entry registered without a schema gets `raw` as it is.
 */
export function configureOptions(registry: Registry, kind: Kind, name: string, raw: unknown, place: OptionsPlace): unknown {
  const { issues, value } = optionIssues(registry, kind, name, raw, place);
  if (issues.length) throw issuesError(issues);
  return value;
}

function issuesError(issues: readonly KindIssue[]): AtflowError {
  if (issues.length === 1) return new AtflowError(issues[0].code ?? 'CONFIG', issues[0].message, issues[0].details);
  return new AtflowError('CONFIG', issues.map((i) => i.message).join('\n'), issues[0].details);
}

const omit = (o: Record<string, unknown>, keys: readonly string[]) =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

/** The config's choice of one kind: the entry's name and its options block (absent for kinds named only). */
interface Choice {
  readonly kind: Kind;
  readonly name: string;
  readonly place: OptionsPlace;
  readonly options?: Record<string, unknown>;
}

/** The names of TE's own settings (the ensemble entry's schema); the rest of `trainer.te` is the trainer's. */
function ensembleKeys(registry: Registry, spec: RunSpec): string[] {
  const te = spec.trainer.te;
  if (!te) return [];
  const name = (te as { name?: string }).name ?? temporalEnsembleEntry.name;
  const schema = registry.entry('ensemble', name)?.options;
  return schema ? schemaKeysAt(schema, []) : Object.keys(te).filter((k) => k !== 'name');
}

/** Every entry a spec names, with its options block, in the order the run builds them. */
function choices(spec: RunSpec, registry: Registry): Choice[] {
  const out: Choice[] = [];
  const add = (kind: Kind, name: string | undefined, place: OptionsPlace, options?: Record<string, unknown>) => {
    if (name !== undefined) out.push({ kind, name, place, options });
  };
  add('source', spec.data.source, { field: 'data.options', nameField: 'data.source', style: 'options' }, spec.data.options);
  add('model', spec.model.name, { field: 'model', nameField: 'model.name', before: ['name'] }, omit(spec.model, ['name']));
  const augment = spec.data.augment;
  add(
    'augmentation',
    typeof augment === 'string' ? augment : ((augment as { name?: string }).name ?? cropFlipAugmentationEntry.name),
    { field: 'data.augment', nameField: 'data.augment', before: ['name'] },
    typeof augment === 'string' ? {} : omit(augment, ['name']),
  );
  add('planner', spec.data.planner ?? epochShufflePlannerEntry.name, { field: 'data', nameField: 'data.planner' });
  add(
    'attack',
    spec.attack.name,
    { field: 'attack', nameField: 'attack.name', before: ['name'], after: ['objective'] },
    omit(spec.attack, ['name', 'objective']),
  );
  add('objective', spec.attack.objective, { field: 'attack', nameField: 'attack.objective' });
  const te = spec.trainer.te as (Record<string, unknown> & { name?: string }) | null;
  const teOwn = ensembleKeys(registry, spec);
  if (te)
    add(
      'ensemble',
      te.name ?? temporalEnsembleEntry.name,
      { field: 'trainer.te', nameField: 'trainer.te.name', before: ['name'] },
      Object.fromEntries(Object.entries(te).filter(([k]) => teOwn.includes(k))),
    );
  const teLeft = te ? omit(te, [...teOwn, 'name']) : {};
  add(
    'trainer',
    spec.trainer.name,
    {
      field: 'trainer',
      nameField: 'trainer.name',
      before: ['name'],
      alsoAt: (p) => (p.length === 1 && p[0] === 'te' ? ['name', ...teOwn] : []),
    },
    { ...omit(spec.trainer, ['name', 'te']), ...(Object.keys(teLeft).length ? { te: teLeft } : {}) },
  );
  add(
    'optimizer',
    spec.optimizer.name ?? sgdEntry.name,
    { field: 'optimizer', nameField: 'optimizer.name', before: ['name', 'lr'] },
    omit(spec.optimizer, ['name', 'lr']),
  );
  add('schedule', spec.schedule.name, { field: 'schedule', nameField: 'schedule.name', before: ['name'] }, omit(spec.schedule, ['name']));
  add('evaluator', spec.eval.evaluator ?? DEFAULT_EVALUATOR, { field: 'eval', nameField: 'eval.evaluator' });
  for (const sink of spec.logging.sinks ?? []) add('sink', sink, { field: 'logging', nameField: 'logging.sinks' });
  return out;
}

/**
 * A name the registry does not hold, as the config field's error. Schedules were a closed list of the
 * config's before plugins could add one, and are still reported as its allowed values.
 */
function unknownNameIssue(registry: Registry, c: Choice): KindIssue | null {
  if (c.kind === 'model') ensureWrn(registry, c.name);
  if (registry.has(c.kind, c.name)) return null;
  if (c.kind === 'schedule') {
    const names = registry.entries('schedule').map((e) => e.name);
    const lines = issueLines({ code: 'invalid_enum_value', options: names, received: c.name, path: [], message: '' } as z.ZodIssue, {
      input: c.name,
      at: [c.place.nameField],
      allowedAt: () => [],
    });
    return { message: lines[0], details: { field: c.place.nameField, value: c.name, allowed: names } };
  }
  const e = unknownName(c.kind, c.name, registry.list(c.kind), c.place.nameField);
  return { message: e.message, details: e.details, code: 'UNKNOWN_NAME' };
}

/** Any wrn-D-K (D = 6n + 4) is a built-in model by name: registered in `registry` when a config names one. */
export function ensureWrn(registry: Registry, name: string): void {
  if (registry.has('model', name) || !/^wrn-\d+-\d+$/.test(name)) return;
  // createModel parses the depth and width from the name it is given
  registry.asOrigin('builtin', () =>
    registry.register('model', name, (o: CreateModelOptions) => createModel(name, o), {
      options: registry.entry('model', 'wrn-28-10')?.options,
    }),
  );
}

/** The problems of the kind-owned fields of `spec`; `tolerant` leaves out unknown names and fields only another entry reads. */
function kindIssues(spec: RunSpec, registry: Registry, tolerant: boolean): { issues: KindIssue[]; configured: Map<Choice, unknown> } {
  const issues: KindIssue[] = [];
  const configured = new Map<Choice, unknown>();
  for (const c of choices(spec, registry)) {
    const unknown = unknownNameIssue(registry, c);
    if (unknown) {
      if (!tolerant) issues.push(unknown);
      continue;
    }
    if (c.options === undefined) continue;
    const r = optionIssues(registry, c.kind, c.name, c.options, c.place);
    issues.push(...r.issues.filter((i) => !(tolerant && i.ignored)));
    if (!r.issues.length) configured.set(c, r.value);
  }
  return { issues, configured };
}

/** The names `spec` gives that `registry` does not hold, each with the config field that gives it. */
export function unregisteredNames(spec: RunSpec, registry: Registry): { kind: Kind; name: string; field: string }[] {
  return choices(spec, registry)
    .filter((c) => (c.kind === 'model' && ensureWrn(registry, c.name), !registry.has(c.kind, c.name)))
    .map((c) => ({ kind: c.kind, name: c.name, field: c.place.nameField }));
}

/** For validateSpec: problems of the fields of the entries `registry` holds, not counting fields another entry reads. */
export function kindFieldProblems(spec: RunSpec, registry: Registry): string[] {
  return kindIssues(spec, registry, true).issues.map((i) => i.message);
}

/** A run's kind-owned choices, each checked against its entry: the entry's name and its parsed options. */
export interface ConfiguredRun {
  readonly get: <O = Record<string, unknown>>(kind: Kind) => { readonly name: string; readonly options: O };
}

/**
 * Checks every entry `spec` names against `registry` (each name registered, each field read by the
 * entry that the config picks) and returns their options, parsed. The errors name the config field;
 * a trainer that runs no attack refuses attack fields that would be ignored.
 */
export function configureRun(spec: RunSpec, registry: Registry): ConfiguredRun {
  const { issues, configured } = kindIssues(spec, registry, false);
  if (spec.trainer.name === 'standard' && registry.originOf('trainer', 'standard') === 'builtin') {
    for (const [field, value] of [
      ['attack.name', spec.attack.name === pgdEntry.name ? undefined : spec.attack.name],
      ['attack.objective', spec.attack.objective],
    ] as const) {
      if (value === undefined) continue;
      issues.push({
        message:
          `${field}: trainer 'standard' runs no attack, so '${value}' would be ` +
          `ignored; remove ${field} or pick an adversarial trainer (pgd-at, ` +
          `trades, mart)`,
        details: { field, value },
      });
    }
  }
  if (issues.length) throw issuesError(issues);
  const byKind = new Map<Kind, { name: string; options: unknown }>();
  for (const [c, value] of configured) if (!byKind.has(c.kind)) byKind.set(c.kind, { name: c.name, options: value });
  for (const c of choices(spec, registry)) if (!byKind.has(c.kind)) byKind.set(c.kind, { name: c.name, options: c.options ?? {} });
  return {
    get: <O>(kind: Kind) => {
      const c = byKind.get(kind);
      if (!c) throw new AtflowError('ARGUMENT', `configureRun: the config names no ${kind}`);
      return c as { name: string; options: O };
    },
  };
}
