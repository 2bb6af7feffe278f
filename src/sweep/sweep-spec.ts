import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError, didYouMean } from '../core/errors';
import { applySets, describeValue, isPlainObject, parseDottedPath, parseSetArg, setDottedPath } from '../config/dotted-path';
import { canonicalJson } from '../config/canonical-json';

/**
 * A sweep file (`atflow sweep <sweep.json>`): a base run config, axes of values to vary, and how to run
 * the resulting points. Parsing resolves everything a later step needs (base loaded, defaults filled), so
 * expansion and executors never look at raw JSON again.
 */

/** `local`: a pool of worker processes on this machine. */
export interface LocalExecutorSpec {
  kind: 'local';
  /** Concurrent runs; undefined = one per GPU when GPUs are present, else one per core. */
  workers?: number;
  /** 'auto': detect (CUDA_VISIBLE_DEVICES, else nvidia-smi -L); 'none': never pin; a list: these device ids. */
  gpus: 'auto' | 'none' | string[];
}

/** `array`: write a Kubernetes Indexed Job and a SLURM array script, each task running one point. */
export interface ArrayExecutorSpec {
  kind: 'array';
  /** Where job.yaml and sweep.sbatch go; default: the sweep folder `<out>/sweeps/<name>/`. */
  dir?: string;
  /** Tasks running at once; undefined = all of them (the scheduler decides). */
  parallelism?: number;
  /**
   * argv prefix that starts atflow inside a task, followed by `sweep-worker <manifest>`. Unset: SLURM runs
   * this machine's node on this package's bin/atflow.js by absolute path (a shared file system, as on
   * most clusters), Kubernetes runs `atflow` from the image.
   */
  command?: string[];
  /** Per-task resources. */
  resources: { gpus: number; cpus?: number; memoryGiB?: number };
  /** `pvc`: the claim mounted at `workdir` (default "atflow-runs"); `retriesPerIndex`: backoffLimitPerIndex (default 2). */
  kubernetes: { image: string; workdir: string; pvc: string; namespace?: string; retriesPerIndex: number };
  slurm: { partition?: string; time?: string; chdir?: string };
}

export type ExecutorSpec = LocalExecutorSpec | ArrayExecutorSpec;

export interface SweepAxis {
  path: string;
  values: unknown[];
}

export interface SweepSpec {
  /** Folder-safe name: the sweep file's base name unless the file sets `name`. */
  name: string;
  /** Absolute path of the sweep file (or the path given to parseSweepSpec). */
  file: string;
  /** The base run config, as JSON. */
  base: Record<string, unknown>;
  /** Directory the base's relative `extends` is resolved against. */
  baseDir: string;
  /** Axes in file order; the last one varies fastest. */
  axes: SweepAxis[];
  executor: ExecutorSpec;
  /** Output root for runs, relative to the working directory (like `atflow run --out`). */
  out: string;
}

export const EXECUTOR_KINDS = ['local', 'array'] as const;
const TOP_KEYS = ['name', 'description', 'base', 'axes', 'executor', 'out'];
const LOCAL_KEYS = ['kind', 'workers', 'gpus'];
const ARRAY_KEYS = ['kind', 'dir', 'parallelism', 'command', 'resources', 'kubernetes', 'slurm'];
const RESOURCE_KEYS = ['gpus', 'cpus', 'memoryGiB'];
const K8S_KEYS = ['image', 'workdir', 'pvc', 'namespace', 'retriesPerIndex'];
const SLURM_KEYS = ['partition', 'time', 'chdir'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Reads and validates a sweep file. */
export function loadSweepSpec(file: string): SweepSpec {
  const abs = path.resolve(file);
  return parseSweepSpec(readJsonObject(abs, 'sweep file'), abs);
}

/**
 * Validates a sweep object. `file` names it in errors, anchors a relative `base`, and gives the default
 * name; from code, pass any path ending in `<name>.json` in the folder the base path is relative to.
 */
export function parseSweepSpec(raw: unknown, file: string): SweepSpec {
  const abs = path.resolve(file);
  const rel = path.relative(process.cwd(), abs);
  const where = rel && !rel.startsWith('..') ? rel : abs;
  if (!isPlainObject(raw)) throw err(where, '', `expected a JSON object, got ${describeValue(raw)}`);
  checkKeys(raw, TOP_KEYS, where, '');

  const name = raw.name === undefined ? path.basename(abs).replace(/\.json$/i, '') : raw.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw err(where, 'name', `expected a folder-safe name (letters, digits, '.', '_', '-'), got ${describeValue(name)}`);
  }

  const { base, baseDir } = resolveBase(raw.base, abs, where);
  const axes = parseAxes(raw.axes, base, where);
  const executor = parseExecutor(raw.executor, where);
  const out = raw.out === undefined ? 'runs' : raw.out;
  if (typeof out !== 'string' || out === '') throw err(where, 'out', `expected a directory path, got ${describeValue(out)}`);
  return { name, file: abs, base, baseDir, axes, executor, out };
}

function resolveBase(raw: unknown, sweepFile: string, where: string): { base: Record<string, unknown>; baseDir: string } {
  if (typeof raw === 'string') {
    const baseFile = path.resolve(path.dirname(sweepFile), raw);
    if (!fs.existsSync(baseFile)) {
      throw err(where, 'base', `base config '${raw}' not found (resolved relative to the sweep file: ${baseFile})`);
    }
    return { base: readJsonObject(baseFile, 'base config'), baseDir: path.dirname(baseFile) };
  }
  if (isPlainObject(raw)) return { base: structuredClone(raw), baseDir: path.dirname(sweepFile) };
  throw err(where, 'base', `expected a config path (relative to the sweep file) or an inline config object, got ${describeValue(raw)}`);
}

function parseAxes(raw: unknown, base: Record<string, unknown>, where: string): SweepAxis[] {
  if (!isPlainObject(raw) || Object.keys(raw).length === 0) {
    throw err(where, 'axes', `expected a non-empty object { "<dotted.path>": [values...] }, got ${describeValue(raw)}`);
  }
  const axes: SweepAxis[] = [];
  for (const [p, values] of Object.entries(raw)) {
    parseDottedPath(p, `${where}: axes`);
    if (!Array.isArray(values) || values.length === 0) {
      throw err(where, `axes.${p}`, `expected a non-empty array of values, got ${describeValue(values)}`);
    }
    const seen = new Map<string, number>();
    values.forEach((v, i) => {
      const key = canonicalJson(v);
      if (seen.has(key)) {
        // Two identical points would be the same run (same run_id) launched twice into one folder.
        throw err(where, `axes.${p}`, `value ${JSON.stringify(v)} is listed twice (positions ${seen.get(key)} and ${i})`);
      }
      seen.set(key, i);
    });
    // Fails now, naming the path, if the base has a scalar or array where the path needs an object.
    setDottedPath(structuredClone(base), p, values[0], `${where}: axes`);
    axes.push({ path: p, values });
  }
  for (const a of axes) {
    for (const b of axes) {
      if (a !== b && b.path.startsWith(`${a.path}.`)) {
        throw err(where, 'axes', `axes '${a.path}' and '${b.path}' overlap: one would overwrite the other; keep one of them`);
      }
    }
  }
  return axes;
}

/** Validates an `executor` object; `{ kind }` alone gives that executor with its defaults. */
export function parseExecutor(raw: unknown, where: string): ExecutorSpec {
  if (raw === undefined) return { kind: 'local', gpus: 'auto' };
  if (!isPlainObject(raw)) throw err(where, 'executor', `expected an object with "kind", got ${describeValue(raw)}`);
  const kind = raw.kind;
  if (kind === 'local') return parseLocal(raw, where);
  if (kind === 'array') return parseArray(raw, where);
  const hint = typeof kind === 'string' ? didYouMean(kind, EXECUTOR_KINDS) : undefined;
  throw err(
    where,
    'executor.kind',
    `unknown executor kind ` +
      `${JSON.stringify(kind)}${hint ? ` (did you mean '${hint}'?)` : ''}; ` +
      `expected one of: ${EXECUTOR_KINDS.join(', ')}`,
  );
}

function parseLocal(raw: Record<string, unknown>, where: string): LocalExecutorSpec {
  checkKeys(raw, LOCAL_KEYS, where, 'executor');
  const workers = optionalPositiveInt(raw.workers, where, 'executor.workers');
  let gpus: LocalExecutorSpec['gpus'] = 'auto';
  if (raw.gpus === 'auto' || raw.gpus === 'none' || raw.gpus === undefined) {
    gpus = raw.gpus ?? 'auto';
  } else if (Array.isArray(raw.gpus) && raw.gpus.length > 0 && raw.gpus.every((g) => typeof g === 'string' || Number.isInteger(g))) {
    gpus = raw.gpus.map(String);
  } else {
    throw err(
      where,
      'executor.gpus',
      `expected "auto", "none" or a non-empty list of device ids like [0, 1], got ${describeValue(raw.gpus)}`,
    );
  }
  return { kind: 'local', workers, gpus };
}

function parseArray(raw: Record<string, unknown>, where: string): ArrayExecutorSpec {
  checkKeys(raw, ARRAY_KEYS, where, 'executor');
  const dir = optionalString(raw.dir, where, 'executor.dir');
  const parallelism = optionalPositiveInt(raw.parallelism, where, 'executor.parallelism');
  let command: string[] | undefined;
  if (raw.command !== undefined) {
    if (!Array.isArray(raw.command) || raw.command.length === 0 || !raw.command.every((c) => typeof c === 'string' && c !== '')) {
      throw err(
        where,
        'executor.command',
        `expected a non-empty list of strings like ["node", "bin/atflow.js"], got ${describeValue(raw.command)}`,
      );
    }
    command = raw.command as string[];
  }
  const res = optionalObject(raw.resources, RESOURCE_KEYS, where, 'executor.resources');
  const gpus = res.gpus === undefined ? 0 : res.gpus;
  if (!Number.isInteger(gpus) || (gpus as number) < 0) {
    throw err(where, 'executor.resources.gpus', `expected a non-negative integer, got ${describeValue(gpus)}`);
  }
  const cpus = optionalPositiveInt(res.cpus, where, 'executor.resources.cpus');
  const memoryGiB = res.memoryGiB;
  if (memoryGiB !== undefined && (typeof memoryGiB !== 'number' || !(memoryGiB > 0))) {
    throw err(where, 'executor.resources.memoryGiB', `expected a positive number, got ${describeValue(memoryGiB)}`);
  }
  const k8s = optionalObject(raw.kubernetes, K8S_KEYS, where, 'executor.kubernetes');
  const slurm = optionalObject(raw.slurm, SLURM_KEYS, where, 'executor.slurm');
  return {
    kind: 'array',
    dir,
    parallelism,
    command,
    resources: { gpus: gpus as number, cpus, memoryGiB: memoryGiB as number | undefined },
    kubernetes: {
      image: optionalString(k8s.image, where, 'executor.kubernetes.image') ?? 'atflow:latest',
      workdir: optionalString(k8s.workdir, where, 'executor.kubernetes.workdir') ?? '/workspace',
      pvc: optionalString(k8s.pvc, where, 'executor.kubernetes.pvc') ?? 'atflow-runs',
      namespace: optionalString(k8s.namespace, where, 'executor.kubernetes.namespace'),
      retriesPerIndex: optionalNonNegativeInt(k8s.retriesPerIndex, where, 'executor.kubernetes.retriesPerIndex') ?? 2,
    },
    slurm: {
      partition: optionalString(slurm.partition, where, 'executor.slurm.partition'),
      time: optionalString(slurm.time, where, 'executor.slurm.time'),
      chdir: optionalString(slurm.chdir, where, 'executor.slurm.chdir'),
    },
  };
}

/**
 * `atflow sweep --set path=value`: overrides of the base config, with `atflow run --set`'s semantics (the
 * last word, variants included); a path an axis also sets (or one above or below it) is refused, since
 * one of the two would silently lose.
 */
export function withSets(spec: SweepSpec, sets: readonly string[]): SweepSpec {
  if (sets.length === 0) return spec;
  for (const s of sets) {
    const [p] = parseSetArg(s);
    const axis = spec.axes.find((a) => a.path === p || a.path.startsWith(`${p}.`) || p.startsWith(`${a.path}.`));
    if (axis) {
      throw new AtflowError(
        'CONFIG',
        `--set ${p}: the sweep's axis '${axis.path}' sets it too, point by point; change the axis in ${spec.file} or drop the --set`,
        { field: '--set', path: p, axis: axis.path },
      );
    }
  }
  const base = structuredClone(spec.base);
  applySets(base, sets);
  return { ...spec, base };
}

/** Workers when the spec leaves them open: one per GPU if pinning to GPUs, else one per core. */
export function defaultWorkers(gpuCount: number): number {
  return gpuCount > 0 ? gpuCount : os.availableParallelism();
}

function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AtflowError('IO', `cannot read ${what} ${file}: ${(e as Error).message}`, { file });
  }
  let value: unknown;
  try {
    // a UTF-8 byte order mark is not part of the JSON
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new AtflowError('CONFIG', `${file}: not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!isPlainObject(value)) throw new AtflowError('CONFIG', `${file}: expected a JSON object, got ${describeValue(value)}`, { file });
  return value;
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], where: string, at: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      const hint = didYouMean(k, allowed);
      throw err(where, at ? `${at}.${k}` : k, `unknown key${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${allowed.join(', ')}`);
    }
  }
}

function optionalPositiveInt(v: unknown, where: string, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || (v as number) < 1) throw err(where, at, `expected a positive integer, got ${describeValue(v)}`);
  return v as number;
}

function optionalNonNegativeInt(v: unknown, where: string, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0) throw err(where, at, `expected a non-negative integer, got ${describeValue(v)}`);
  return v as number;
}

function optionalString(v: unknown, where: string, at: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw err(where, at, `expected a non-empty string, got ${describeValue(v)}`);
  return v;
}

function optionalObject(v: unknown, allowed: string[], where: string, at: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) throw err(where, at, `expected an object, got ${describeValue(v)}`);
  checkKeys(v, allowed, where, at);
  return v;
}

function err(where: string, at: string, message: string): AtflowError {
  return new AtflowError('CONFIG', `${where}: ${at ? `${at}: ` : ''}${message}`, { file: where, path: at });
}
