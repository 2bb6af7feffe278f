import { AtflowError } from '../../core/errors';
import type { BackendName } from '../../backend/select';
import { defaultWorkerCount } from './pool';

export interface DataParallelChoice {
  /** 1 = the single-thread operator chain; > 1 = a DataParallelPool of this many workers. */
  readonly workers: number;
  readonly reason: string;
  /** Set when the choice is allowed but slow: more workers than cores. */
  readonly warning?: string;
}

/**
 * How many data-parallel workers a run uses. Unset or 'auto': one worker per core on `wasm` (one tfjs
 * instance uses one core there) and 1 elsewhere (`tensorflow` has its own thread pools; `cpu` is the
 * numerical reference). The attacks' random starts are drawn per example (see startPoint), so they do
 * not depend on the worker count; what does is BatchNorm's train-mode statistics, computed per share
 * (docs/backends.md), and the float order of the merged gradient.
 * ATFLOW_WORKERS=N forces N (1 = the single-thread chain). More than one worker on `tensorflow` is
 * refused: its thread pools would fight the workers for the cores. A parent that starts several runs
 * at once (`atflow run --workers`, the sweep's executors, an sbatch script, a Kubernetes Job) passes each
 * its share of the cores as ATFLOW_CORES (see coresPerProcess), never as ATFLOW_WORKERS: the share only
 * shapes the automatic count, so a tensorflow child is not refused for a count the user never set.
 */
export function dataParallelWorkers(
  backend: BackendName,
  env: NodeJS.ProcessEnv = process.env,
  cores: number = coresOf(env),
  resumedWith?: number,
): DataParallelChoice {
  const raw = (env.ATFLOW_WORKERS ?? '').trim();
  if (raw === '' || raw === 'auto') {
    // A resumed run keeps the count it was trained with: the automatic count follows the cores a
    // process sees (its CPU affinity under SLURM, the variant processes beside it), which may differ
    // between the first attempt and the resume, and a different count would not continue it identically.
    if (resumedWith !== undefined && Number.isInteger(resumedWith) && resumedWith >= 1 && !(resumedWith > 1 && backend === 'tensorflow')) {
      return {
        workers: resumedWith,
        reason: `resumed run: the checkpoint's ${resumedWith} data-parallel worker(s) (ATFLOW_WORKERS unset)`,
      };
    }
    if (backend === 'wasm' && cores > 1)
      return { workers: cores, reason: `wasm on ${cores} cores: one data-parallel worker per core (ATFLOW_WORKERS=1 for a single thread)` };
    return { workers: 1, reason: backend === 'wasm' ? 'wasm on one core: single thread' : `${backend} backend: single thread` };
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new AtflowError('CONFIG', `ATFLOW_WORKERS must be 'auto' or an integer ≥ 1, got '${raw}'`, {
      field: 'ATFLOW_WORKERS',
      value: raw,
    });
  }
  if (n > 1 && backend === 'tensorflow') {
    throw new AtflowError(
      'CONFIG',
      `ATFLOW_WORKERS=${n}: data-parallel workers run on wasm or cpu; the ` +
        `tensorflow backend already uses every core (unset ATFLOW_WORKERS)`,
      { field: 'ATFLOW_WORKERS', value: raw },
    );
  }
  // each worker is one tfjs instance on one core: more workers than cores share them and only add overhead
  const warning =
    n > cores
      ? `ATFLOW_WORKERS=${n} on ${cores} core(s): ${n} data-parallel workers ` +
        `share ${cores} core(s), which is slower than ${cores} (each worker is ` +
        `one tfjs instance on one core); set ATFLOW_WORKERS=${cores} or unset ` +
        `it (the default is one per core)`
      : undefined;
  return { workers: n, reason: `ATFLOW_WORKERS=${n}`, ...(warning ? { warning } : {}) };
}

/** The cores this process may use: its parent's share (ATFLOW_CORES, an integer ≥ 1), else the machine's. */
export function coresOf(env: NodeJS.ProcessEnv = process.env): number {
  const raw = (env.ATFLOW_CORES ?? '').trim();
  if (raw === '') return defaultWorkerCount();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new AtflowError('CONFIG', `ATFLOW_CORES must be an integer ≥ 1 (the cores this process may use), got '${raw}'`, {
      field: 'ATFLOW_CORES',
      value: raw,
    });
  return n;
}

/**
 * The data-parallel workers each of `processes` concurrent processes may use on `cores` cores, so that
 * together they do not oversubscribe the machine: max(1, floor(cores / processes)).
 */
export function coresPerProcess(processes: number, cores: number = defaultWorkerCount()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, processes)));
}
