import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { AtflowError } from '../core/errors';
import { attackSettingsSchema } from '../algorithms/attacks/settings';
import { teOptionsSchema, temporalEnsembleEntry, type TeOptions } from '../algorithms/trainers/te';
import { sgdEntry, sgdOptionsSchema } from '../algorithms/optim/sgd';
import { scheduleOptionsSchema } from '../algorithms/schedules/lr-schedule';
import { canonicalJson } from './canonical-json';
import { applySets, isPlainObject, parseSetArg } from './dotted-path';
import { issueLines, nonFiniteNumbers, schemaKeysAt } from './issues';
import { configureRun, kindFieldProblems } from './kinds';
import { parsePluginRef, Registry } from './registry';
import { registerBuiltins } from './builtins';

/**
 * The RunSpec: one JSON document that declares a run (or a few variants of one). Validated with zod;
 * every error names the path, the bad value and what is allowed. Operators are picked by name, so an
 * ablation is a one-word change ("trainer": {"name": "trades"} → "pgd-at").
 *
 * The parts a config names (source, model, attack, trainer, TE, optimizer, schedule, augmentation, ...)
 * are registry entries, each with the schema of its own options (config/kinds.ts): the blocks holding
 * those options pass here with the fields the built-ins share (the attack settings, TE's, SGD's) typed
 * and defaulted, as every stored spec has them, and the rest is checked against the entry named.
 */

/**
 * A block whose defaults are those of a default entry (SGD's momentum and weight decay, TE's schedule):
 * filled when the block names that entry or none, left as written when it names another (a plugin's,
 * whose own schema checks it in kinds.ts).
 */
function namedBlock<H extends z.ZodRawShape>(head: H, defaultName: string, defaults: z.AnyZodObject) {
  return z
    .object({ name: z.string().optional(), ...head })
    .passthrough()
    .transform((v, ctx) => {
      if (v.name !== undefined && v.name !== defaultName) return v;
      const headKeys = ['name', ...Object.keys(head)];
      const rest = Object.fromEntries(Object.entries(v).filter(([k]) => !headKeys.includes(k)));
      const parsed = defaults.passthrough().safeParse(rest);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue(issue);
        return z.NEVER;
      }
      const headValues = Object.fromEntries(
        headKeys.filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => [k, (v as Record<string, unknown>)[k]]),
      );
      return { ...headValues, ...parsed.data } as typeof v;
    });
}

/** The training attack: the one AttackSettings schema, the attack by name, and the objective its inner maximisation uses. */
const trainAttackSchema = z
  .object({ name: z.string().default('pgd') })
  .merge(attackSettingsSchema)
  .extend({
    /** Default: the trainer's own ('ce' for PGD-AT and MART, 'trades-kl' for TRADES). */
    objective: z.string().optional(),
  })
  .passthrough();

/** TE's block: its own settings (the 'ensemble' entry's: momentum, start, end, weight) and the trainers' `penaltyOn`. */
const teSchema = namedBlock({}, temporalEnsembleEntry.name, teOptionsSchema);

/** The trainer block: its name, its own options (TRADES' and MART's `beta`, a plugin's), and TE (null: off). */
export interface TrainerBlock {
  readonly name: string;
  readonly beta?: number;
  readonly te: (TeOptions & { readonly name?: string }) | null;
  readonly [option: string]: unknown;
}

const specSchema = z
  .object({
    extends: z.string().optional(),
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only')
      .default('run'),
    description: z.string().optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(
        Number.MAX_SAFE_INTEGER,
        'must be at most 2^53 − 1 = 9007199254740991: a larger integer cannot be written exactly in JSON (it would be rounded)',
      )
      .default(1),
    epochs: z.number().int().min(1),
    data: z
      .object({
        /** The dataset by registry name (kind 'source'). */
        source: z.string().default('mnist'),
        /** The source's own options (its schema checks them), e.g. {"dir": "/data/cifar-10-batches-bin"}. */
        options: z.record(z.unknown()).default({}),
        trainSize: z.number().int().min(1).optional(),
        testSize: z.number().int().min(1).optional(),
        /** Validation examples carved from train by seed (for early stopping without the test set). */
        valSize: z.number().int().min(0).default(0),
        batchSize: z.number().int().min(1).default(128),
        testBatchSize: z.number().int().min(1).default(200),
        /**
         * The augmentation by registry name (kind 'augmentation'): 'default' = the dataset's own (crop+flip
         * for CIFAR, none for MNIST / SVHN), 'none', 'crop-flip'; or an object: {crop, flip} (crop-flip's
         * options) or {name, ...options}.
         */
        augment: z
          .union([z.string(), z.object({ name: z.string().optional() }).passthrough()], {
            errorMap: () => ({
              message:
                `expected an augmentation's name ('default', 'none', 'crop-flip', or a ` +
                `registered one) or an object such as {"crop": 4, "flip": true}`,
            }),
          })
          .default('default'),
        /** The batch planner by registry name (kind 'planner'); default 'epoch-shuffle'. */
        planner: z.string().optional(),
      })
      .strict()
      .default({}),
    labelNoise: z
      .object({
        kind: z.enum(['none', 'symmetric', 'symmetric-exclusive', 'pair']).default('none'),
        rate: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({}),
    inputCorruption: z
      .object({
        kind: z.enum(['none', 'shuffled-pixels', 'random-pixels', 'gaussian']).default('none'),
        rate: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({}),
    /** The model by registry name, and a model's own options beside it. */
    model: z.object({ name: z.string() }).passthrough(),
    trainer: z
      .object({ name: z.string().default('pgd-at'), te: teSchema.nullable().default(null) })
      .passthrough()
      .transform(({ name, te, ...own }): TrainerBlock => ({ name, ...own, te: te as TrainerBlock['te'] }))
      .default({}),
    attack: trainAttackSchema.default({}),
    /** The optimiser by registry name (default 'sgd'), the base learning rate (the schedule's) and the optimiser's options. */
    optimizer: namedBlock({ lr: z.number().positive().default(0.1) }, sgdEntry.name, sgdOptionsSchema).default({}),
    /** The schedule by registry name and the options the built-in schedules share. */
    schedule: z
      .object({ name: z.string().default('multistep') })
      .merge(scheduleOptionsSchema)
      .passthrough()
      .default({}),
    eval: z
      .object({
        /** Evaluate every k epochs (the final epoch always). */
        every: z.number().int().min(1).default(1),
        /**
         * The run's threat model (src/evaluation/threat-model.ts builds and checks it): the ball every
         * evaluation attacks in (per-epoch PGD, sanity checks, eval.final's strong suite and AutoAttack,
         * `atflow eval`'s default) and the per-epoch PGD. Default PGD-10 at the training norm and ε with
         * α = ε/4, one restart, uniform (ℓ2: 0.001·N) start; fields given here override that (a norm other
         * than the training one needs its own eps). "inherit" reuses the training attack's norm, ε, α,
         * steps and restarts (e.g. to evaluate FGSM training with FGSM).
         */
        attack: z.union([z.literal('inherit'), z.object({ name: z.string() }).merge(attackSettingsSchema).partial().strict()]).default({}),
        /** Also evaluate the (noisy-labelled) training set, clean and robust: the 'eval' phase of the examples table. */
        train: z.boolean().default(true),
        /** Evaluate this many seeded training examples instead of all. */
        trainSubset: z.number().int().min(1).optional(),
        /** Pick the best epoch on the test or the validation split ('val' needs data.valSize > 0: checked by resolveRuns). */
        selectOn: z.enum(['test', 'val']).default('test'),
        /** The registered 'evaluator' that runs each evaluation pass (absent: the built-in 'pgd', clean + PGD). */
        evaluator: z.string().optional(),
        /**
         * After the last epoch: AutoAttack-style sanity checks (always) and, if `strong`, PGD-20, PGD-50×restarts, CW∞-30, APGD-CE/DLR on
         * the best and final checkpoints.
         */
        final: z
          .object({
            /** true: PGD-20/PGD-50×r/CW/APGD-CE/APGD-DLR; "autoattack": AutoAttack's standard suite (eval/ folders). */
            strong: z.union([z.boolean(), z.literal('autoattack')]).default(false),
            /** Test examples the final evaluation attacks (the first n). */
            examples: z.number().int().min(1).default(1000),
            restarts: z.number().int().min(1).default(5),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    logging: z
      .object({
        examples: z.boolean().default(true),
        arrow: z.boolean().default(false),
        /** Complexity measures every k epochs (0 = never). */
        complexityEvery: z.number().int().min(0).default(0),
        /** More sinks by registry name (kind 'sink'), after parquet, arrow, summary and progress. */
        sinks: z.array(z.string()).optional(),
      })
      .strict()
      .default({}),
    checkpoint: z
      .object({
        every: z.number().int().min(1).default(1),
        /** 'last': only the newest complete checkpoint is kept; 'all': every one (e.g. for `atflow probe gradient --epoch E`). */
        keep: z.enum(['last', 'all']).default('last'),
      })
      .strict()
      .default({}),
    /**
     * Plugin modules registered before the run ('path/to/module.js' or 'module.js#exportName', default
     * export 'register'; paths relative to the config file): their names can be used in this config,
     * and data-parallel workers and --workers processes register them too.
     */
    plugins: z.array(z.string()).optional(),
    /** Several runs from one file: each variant deep-merges its overrides into the rest. */
    variants: z.record(z.record(z.unknown())).nullable().optional(),
  })
  .strict();

export type RunSpec = z.output<typeof specSchema>;
export type RunSpecInput = z.input<typeof specSchema>;
/** One concrete run: a spec without variants, with its variant name and id. */
export interface ResolvedRun {
  readonly spec: RunSpec;
  readonly variant: string | null;
  readonly runId: string;
}

function formatIssues(issues: z.ZodIssue[], input: unknown, file: string): string {
  return invalidConfig(
    file,
    issues.flatMap((iss) => issueLines(iss, { input, at: [], allowedAt: (p) => schemaKeysAt(specSchema, p) })),
  );
}

/** "<file>: invalid config" and one indented line per problem. */
function invalidConfig(file: string, lines: readonly string[]): string {
  return `${file}: invalid config\n  ${lines.join('\n  ')}`;
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : structuredClone(over);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : structuredClone(v);
  return out;
}

export { parseSetArg, canonicalJson };

/** Reads a config file and follows `extends` (relative to the file), base first. */
export function readRawSpec(file: string, seen: string[] = []): Record<string, unknown> {
  const abs = path.resolve(file);
  if (seen.includes(abs)) throw new AtflowError('CONFIG', `${file}: 'extends' cycle: ${[...seen, abs].join(' → ')}`);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (e: any) {
    throw new AtflowError('CONFIG', `${file}: cannot read config (${e.code ?? e.message})`, { file });
  }
  let raw: unknown;
  try {
    // a UTF-8 byte order mark (some Windows editors write one) is not part of the JSON
    raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e: any) {
    throw new AtflowError('CONFIG', `${file}: not valid JSON (${e.message})`, { file });
  }
  if (!isPlainObject(raw)) throw new AtflowError('CONFIG', `${file}: a config must be a JSON object`, { file });
  if (raw.extends !== undefined) {
    if (typeof raw.extends !== 'string') throw new AtflowError('CONFIG', `${file}: extends: expected a file path string`);
    const base = readRawSpec(path.resolve(path.dirname(abs), raw.extends), [...seen, abs]);
    const { extends: _drop, ...rest } = raw;
    return deepMerge(base, rest) as Record<string, unknown>;
  }
  return raw;
}

let sharedBuiltins: Registry | null = null;
/** The built-ins, to check a config against when no registry is given (never handed out). */
function builtinsForChecks(): Registry {
  return (sharedBuiltins ??= registerBuiltins(new Registry()));
}

/**
 * Validates a raw (extends-resolved) config object: every number finite, the spec's shape, and the
 * fields of each part the config names against that entry's schema in `registry` (default: the
 * built-ins). A name the registry does not hold, and a field that only another entry reads, are left to
 * configureRun (buildRun, loadRunsWithPlugins), which knows the plugins and the entry picked.
 */
export function validateSpec(raw: unknown, file = '<config>', registry?: Registry): RunSpec {
  const nonFinite = nonFiniteNumbers(raw);
  if (nonFinite.length) throw new AtflowError('CONFIG', invalidConfig(file, nonFinite), { file });
  const res = specSchema.safeParse(raw);
  if (!res.success) throw new AtflowError('CONFIG', formatIssues(res.error.issues, raw, file), { file });
  const problems = kindFieldProblems(res.data, registry ?? builtinsForChecks());
  if (problems.length) throw new AtflowError('CONFIG', invalidConfig(file, problems), { file });
  return res.data;
}

/** run_id = readable name + hash of the normalised spec (which includes the seed). */
export function runIdOf(spec: RunSpec, variant: string | null): string {
  const { description: _d, variants: _v, extends: _e, ...rest } = spec;
  const hash = createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 12);
  return `${spec.name}${variant ? `-${variant}` : ''}-${hash}`;
}

/**
 * Loads, resolves `extends`, applies --set overrides (the last word: after the variants, see applySets),
 * validates, and expands variants into concrete runs. Runs no plugin code (loadRunsWithPlugins does).
 */
export function loadRuns(file: string, sets: readonly string[] = [], registry?: Registry): ResolvedRun[] {
  const raw = readRawSpec(file);
  applySets(raw, sets);
  return resolveRuns(raw, file, registry);
}

/**
 * Fields valid alone that contradict each other in a config about to run (a stored spec.json is only
 * validated, so older run folders stay readable): `eval.selectOn: "val"` without a validation split
 * would silently pick the best epoch on the test set.
 */
function checkRunnable(spec: RunSpec, file: string): void {
  const carved = spec.data.valSize > 0 || Number(spec.data.options.valSize) > 0;
  if (spec.eval.selectOn === 'val' && !carved) {
    throw new AtflowError(
      'CONFIG',
      `${file}: invalid config\n  eval.selectOn: "val" needs a validation ` +
        `split, but data.valSize is 0; set data.valSize (e.g. 1000 examples ` +
        `carved from train) or eval.selectOn: "test"`,
      { file, field: 'eval.selectOn' },
    );
  }
}

export function resolveRuns(raw: Record<string, unknown>, file = '<config>', registry?: Registry): ResolvedRun[] {
  const base = validateSpec(raw, file, registry);
  if (!base.variants || Object.keys(base.variants).length === 0) {
    checkRunnable(base, file);
    return [{ spec: base, variant: null, runId: runIdOf(base, null) }];
  }
  const { variants, ...rawRest } = raw as Record<string, unknown> & { variants: Record<string, unknown> };
  return Object.entries(variants).map(([name, over]) => {
    if (!/^[A-Za-z0-9._-]+$/.test(name))
      throw new AtflowError('CONFIG', `${file}: variants.${name}: variant names use letters, digits, dot, dash and underscore only`);
    const merged = deepMerge(rawRest, over);
    const spec = validateSpec(merged, `${file} (variant '${name}')`, registry);
    checkRunnable(spec, `${file} (variant '${name}')`);
    return { spec, variant: name, runId: runIdOf(spec, name) };
  });
}

export interface LoadRunsOptions {
  /** `--set path=value` overrides, applied after the variants. */
  readonly sets?: readonly string[];
  /** Plugin modules besides the config's (the CLI's `--plugin module[#export]`), loaded first. */
  readonly plugins?: readonly string[];
  /** Told which plugin module is about to be loaded, before its code runs. */
  readonly log?: (line: string) => void;
  /**
   * Check every run's parts against the registry (default true). `atflow run --workers n` leaves it to
   * the variant processes, which check their own before they write anything.
   */
  readonly check?: boolean;
}

/**
 * A config's runs, checked through and through before anything runs or is written. The config is read
 * and validated first; then its plugins (and `options.plugins`) are loaded into `registry` (a plugin is
 * code: it runs only once the rest of the config is valid, and is named as it loads); then every run's
 * parts are checked against the entries it names (configureRun). Errors name the file, variant and field.
 */
export function loadRunsWithPlugins(file: string, registry: Registry, options: LoadRunsOptions = {}): ResolvedRun[] {
  const runs = loadRuns(file, options.sets ?? [], registry);
  const refs = [
    ...(options.plugins ?? []).map((p) => parsePluginRef(p)),
    // a config's plugins, relative to the config file
    ...runs.flatMap((run) => (run.spec.plugins ?? []).map((p) => parsePluginRef(p, path.dirname(path.resolve(file))))),
  ];
  for (const ref of refs) {
    if (registry.plugins.some((p) => p.module === ref.module && p.export === ref.export)) continue;
    options.log?.(`atflow: loading plugin ${ref.module}#${ref.export} (plugins are code: it runs with your permissions)`);
    registry.use(ref.module, ref.export);
  }
  if (options.check !== false) checkRuns(file, runs, registry);
  return runs;
}

/** Every run's parts checked against the entries it names (configureRun); the error names the file and variant. */
export function checkRuns(file: string, runs: readonly ResolvedRun[], registry: Registry): void {
  for (const run of runs) {
    try {
      configureRun(run.spec, registry);
    } catch (e) {
      if (!(e instanceof AtflowError)) throw e;
      const where = `${file}${run.variant ? ` (variant '${run.variant}')` : ''}`;
      throw new AtflowError('CONFIG', invalidConfig(where, e.message.split('\n')), { ...e.details, file });
    }
  }
}

/**
 * Settings that are valid but almost certainly not what the user meant; the runner emits each as a
 * 'warning' event (printed by the progress display, kept in summary.json), the run still goes ahead.
 */
export function specWarnings(spec: RunSpec): string[] {
  const out: string[] = [];
  // a rate that does nothing: the config does not say what it means (a sweep over the rate with the kind left at 'none')
  for (const field of ['labelNoise', 'inputCorruption'] as const) {
    const { kind, rate } = spec[field];
    if (kind === 'none' && rate > 0) {
      const kinds = field === 'labelNoise' ? 'symmetric, symmetric-exclusive, pair' : 'shuffled-pixels, random-pixels, gaussian';
      out.push(
        `${field}.rate is ${rate} but ${field}.kind is 'none', so nothing is changed: set ${field}.kind (${kinds}) or remove the rate`,
      );
    }
  }
  const te = spec.trainer.te;
  if (te?.start !== undefined && te.start > spec.epochs) {
    out.push(
      `trainer.te.start is ${te.start} but the run has only ${spec.epochs} ` +
        `epochs (epochs): TE never switches on and the run is plain ` +
        `${spec.trainer.name}; set trainer.te.start (and te.end, now ` +
        `${te.end}) to epochs within 1..${spec.epochs}`,
    );
  }
  return out;
}

export { specSchema };
