import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { AtflowError, didYouMean } from '../core/errors';

/**
 * The RunSpec: one JSON document that declares a run (or a few variants of one). Validated with zod;
 * every error names the path, the bad value and what is allowed. Operators are picked by name, so an
 * ablation is a one-word change ("trainer": {"name": "trades"} → "pgd-at").
 */

const attackSchema = z
  .object({
    name: z.string().default('pgd'),
    norm: z.enum(['linf', 'l2']).default('linf'),
    eps: z.number().min(0).default(8 / 255),
    alpha: z.number().min(0).default(2 / 255),
    steps: z.number().int().min(0).default(10),
    restarts: z.number().int().min(1).default(1),
    /** Default: the trainer's (authors') own start; see docs/attacks.md. */
    randomStart: z.enum(['none', 'uniform', 'uniform-clamped', 'normal', 'normal-clamped']).optional(),
  })
  .strict();

/** The training attack: also the objective its inner maximisation uses, by registry name (kind 'objective'). */
const trainAttackSchema = attackSchema
  .extend({
    /** Default: the trainer's own ('ce' for PGD-AT and MART, 'trades-kl' for TRADES). */
    objective: z.string().optional(),
  })
  .strict();

const teSchema = z
  .object({
    /** η < 1: with η = 1 the ensemble never moves off its zero start and p̂ stays empty. */
    momentum: z.number().min(0).lt(1, 'must be in [0, 1): with momentum 1 the ensemble never moves off its zero start, so TE would never see a prediction').default(0.9),
    start: z.number().int().min(1).default(90),
    end: z.number().int().min(1).default(150),
    weight: z.number().min(0).default(300),
    /** TRADES+TE: the training penalty on natural logits (authors) or adversarial ones. */
    penaltyOn: z.enum(['natural', 'adversarial']).optional(),
  })
  .strict();

const specSchema = z
  .object({
    extends: z.string().optional(),
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, dash and underscore only').default('run'),
    description: z.string().optional(),
    seed: z.number().int().min(0).default(1),
    epochs: z.number().int().min(1),
    data: z
      .object({
        source: z.string().default('mnist'),
        /** Source-specific options, e.g. {"dir": "/data/cifar-10-batches-bin"}. */
        options: z.record(z.unknown()).default({}),
        trainSize: z.number().int().min(1).optional(),
        testSize: z.number().int().min(1).optional(),
        /** Validation examples carved from train by seed (for early stopping without the test set). */
        valSize: z.number().int().min(0).default(0),
        batchSize: z.number().int().min(1).default(128),
        testBatchSize: z.number().int().min(1).default(200),
        /** 'default' = the dataset's own (crop+flip for CIFAR, none for MNIST / SVHN). */
        augment: z.union([z.enum(['default', 'none', 'crop-flip']), z.object({ crop: z.number().int().min(0), flip: z.boolean() }).strict()]).default('default'),
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
    model: z.object({ name: z.string() }).strict(),
    trainer: z
      .object({
        name: z.string().default('pgd-at'),
        beta: z.number().min(0).optional(),
        te: teSchema.nullable().default(null),
      })
      .strict()
      .default({}),
    attack: trainAttackSchema.default({}),
    optimizer: z
      .object({
        lr: z.number().positive().default(0.1),
        momentum: z.number().min(0).max(1).default(0.9),
        weightDecay: z.number().min(0).default(5e-4),
      })
      .strict()
      .default({}),
    schedule: z
      .object({
        name: z.enum(['multistep', 'step', 'cosine', 'constant']).default('multistep'),
        milestones: z.array(z.number().int().min(1)).default([100, 150]),
        stepSize: z.number().int().min(1).optional(),
        gamma: z.number().positive().default(0.1),
      })
      .strict()
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
        attack: z.union([z.literal('inherit'), attackSchema.partial()]).default({}),
        /** Also evaluate the (noisy-labelled) training set, clean and robust: the 'eval' phase of the examples table. */
        train: z.boolean().default(true),
        /** Evaluate this many seeded training examples instead of all. */
        trainSubset: z.number().int().min(1).optional(),
        /** Pick the best epoch on the test or the validation split ('val' needs data.valSize > 0: checked by resolveRuns). */
        selectOn: z.enum(['test', 'val']).default('test'),
        /** The registered 'evaluator' that runs each evaluation pass (absent: the built-in 'pgd', clean + PGD). */
        evaluator: z.string().optional(),
        /** After the last epoch: AutoAttack-style sanity checks (always) and, if `strong`, PGD-20, PGD-50×restarts, CW∞-30, APGD-CE/DLR on the best and final checkpoints. */
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

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function getAt(obj: unknown, p: (string | number)[]): unknown {
  let cur: any = obj;
  for (const k of p) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = cur[k];
  }
  return cur;
}

/** The keys a strict object schema allows at `p` (for "did you mean"). */
function allowedKeysAt(p: (string | number)[]): string[] {
  let s: z.ZodTypeAny = specSchema;
  for (const k of p) {
    while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    if (s instanceof z.ZodUnion) s = (s.options as z.ZodTypeAny[]).find((o) => o instanceof z.ZodObject) ?? s;
    if (s instanceof z.ZodObject) s = s.shape[k as string];
    else if (s instanceof z.ZodRecord) s = s._def.valueType;
    else return [];
    if (!s) return [];
  }
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
  if (s instanceof z.ZodUnion) s = (s.options as z.ZodTypeAny[]).find((o) => o instanceof z.ZodObject) ?? s;
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function formatIssues(issues: z.ZodIssue[], input: unknown, file: string): string {
  const lines = issues.map((iss) => {
    const where = iss.path.length ? iss.path.join('.') : '(top level)';
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(iss.path);
      return iss.keys
        .map((k) => {
          const hint = didYouMean(k, allowed);
          const at = [...iss.path, k].join('.');
          return `${at}: unknown field${hint ? ` (did you mean '${[...iss.path, hint].join('.')}'?)` : ''}; allowed: ${allowed.join(', ')}`;
        })
        .join('\n  ');
    }
    const got = getAt(input, iss.path);
    if (iss.code === 'invalid_enum_value') {
      const hint = didYouMean(String(got), iss.options.map(String));
      return `${where}: ${describeValue(got)} is not allowed${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${iss.options.join(', ')}`;
    }
    if (iss.code === 'invalid_type' && iss.received === 'undefined') return `${where}: required ${iss.expected} is missing`;
    return `${where}: ${iss.message}${got !== undefined ? ` (got ${describeValue(got)})` : ''}`;
  });
  return `${file}: invalid config\n  ${lines.join('\n  ')}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : structuredClone(over);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : structuredClone(v);
  return out;
}

/** Sets a dotted path ("attack.eps") in a plain object, creating objects on the way. */
export function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  if (keys.some((k) => k === '')) throw new AtflowError('CONFIG', `--set ${dotted}: empty path segment`);
  let cur: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    if (cur[k] === undefined || cur[k] === null) cur[k] = {};
    if (!isPlainObject(cur[k])) throw new AtflowError('CONFIG', `--set ${dotted}: '${k}' is not an object (it is ${describeValue(cur[k])})`);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/** `--set path=value`: the value is parsed as JSON when it can be (numbers, booleans, arrays), else kept as a string. */
export function parseSetArg(arg: string): [string, unknown] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new AtflowError('CONFIG', `--set '${arg}': expected path=value, e.g. --set attack.eps=0.1`);
  const raw = arg.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    /* a bare string */
  }
  return [arg.slice(0, eq), value];
}

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
    raw = JSON.parse(text);
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

/** Validates a raw (extends-resolved) config object. */
export function validateSpec(raw: unknown, file = '<config>'): RunSpec {
  const res = specSchema.safeParse(raw);
  if (!res.success) throw new AtflowError('CONFIG', formatIssues(res.error.issues, raw, file), { file });
  return res.data;
}

/** Canonical JSON: sorted keys, so equal specs hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isPlainObject(v))
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** run_id = readable name + hash of the normalised spec (which includes the seed). */
export function runIdOf(spec: RunSpec, variant: string | null): string {
  const { description: _d, variants: _v, extends: _e, ...rest } = spec;
  const hash = createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 12);
  return `${spec.name}${variant ? `-${variant}` : ''}-${hash}`;
}

/** Loads, resolves `extends`, applies --set overrides, validates, and expands variants into concrete runs. */
export function loadRuns(file: string, sets: string[] = []): ResolvedRun[] {
  const raw = readRawSpec(file);
  for (const s of sets) {
    const [p, v] = parseSetArg(s);
    setPath(raw, p, v);
  }
  return resolveRuns(raw, file);
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
      `${file}: invalid config\n  eval.selectOn: "val" needs a validation split, but data.valSize is 0; set data.valSize (e.g. 1000 examples carved from train) or eval.selectOn: "test"`,
      { file, field: 'eval.selectOn' },
    );
  }
}

export function resolveRuns(raw: Record<string, unknown>, file = '<config>'): ResolvedRun[] {
  const base = validateSpec(raw, file);
  if (!base.variants || Object.keys(base.variants).length === 0) {
    checkRunnable(base, file);
    return [{ spec: base, variant: null, runId: runIdOf(base, null) }];
  }
  const { variants, ...rawRest } = raw as Record<string, unknown> & { variants: Record<string, unknown> };
  return Object.entries(variants).map(([name, over]) => {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new AtflowError('CONFIG', `${file}: variants.${name}: variant names use letters, digits, dot, dash and underscore only`);
    const merged = deepMerge(rawRest, over);
    const spec = validateSpec(merged, `${file} (variant '${name}')`);
    checkRunnable(spec, `${file} (variant '${name}')`);
    return { spec, variant: name, runId: runIdOf(spec, name) };
  });
}

/**
 * Settings that are valid but almost certainly not what the user meant; the runner emits each as a
 * 'warning' event (printed by the progress display, kept in summary.json), the run still goes ahead.
 */
export function specWarnings(spec: RunSpec): string[] {
  const out: string[] = [];
  const te = spec.trainer.te;
  if (te && te.start > spec.epochs) {
    out.push(`trainer.te.start is ${te.start} but the run has only ${spec.epochs} epochs (epochs): TE never switches on and the run is plain ${spec.trainer.name}; set trainer.te.start (and te.end, now ${te.end}) to epochs within 1..${spec.epochs}`);
  }
  return out;
}

export { specSchema };
