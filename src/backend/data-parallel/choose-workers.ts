import { AtflowError } from '../../core/errors';
import type { BackendName } from '../select';
import { defaultWorkerCount } from './pool';

export interface DataParallelChoice {
  /** 1 = the single-thread operator chain; > 1 = a DataParallelPool of this many workers. */
  readonly workers: number;
  readonly reason: string;
}

/**
 * How many data-parallel workers a run uses. ATFLOW_WORKERS=N forces N (1 = single thread);
 * ATFLOW_WORKERS=auto (or unset) gives one worker per core on `wasm` (where a single tfjs instance
 * uses one core) and 1 elsewhere (`tensorflow` has its own thread pools; `cpu` is the numerical
 * reference). Data parallelism on `tensorflow` is refused: its threads would fight the workers'.
 */
export function dataParallelWorkers(backend: BackendName, env: NodeJS.ProcessEnv = process.env, cores: number = defaultWorkerCount()): DataParallelChoice {
  const raw = (env.ATFLOW_WORKERS ?? '').trim();
  if (raw === '' || raw === 'auto') {
    if (backend === 'wasm' && cores > 1) return { workers: cores, reason: `wasm on ${cores} cores: one data-parallel worker per core` };
    return { workers: 1, reason: backend === 'wasm' ? 'one core' : `${backend} backend: single thread` };
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new AtflowError('CONFIG', `ATFLOW_WORKERS must be 'auto' or an integer ≥ 1, got '${raw}'`, { field: 'ATFLOW_WORKERS', value: raw });
  }
  if (n > 1 && backend === 'tensorflow') {
    throw new AtflowError('CONFIG', `ATFLOW_WORKERS=${n}: data-parallel workers run on wasm or cpu; the tensorflow backend already uses every core (unset ATFLOW_WORKERS)`, { field: 'ATFLOW_WORKERS', value: raw });
  }
  return { workers: n, reason: `ATFLOW_WORKERS=${n}` };
}
