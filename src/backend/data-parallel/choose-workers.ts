import { AtflowError } from '../../core/errors';
import type { BackendName } from '../select';
import { defaultWorkerCount } from './pool';

export interface DataParallelChoice {
  /** 1 = the single-thread operator chain; > 1 = a DataParallelPool of this many workers. */
  readonly workers: number;
  readonly reason: string;
}

/**
 * How many data-parallel workers a run uses. Unset: 1 (the single-thread chain) — opt-in, because the
 * random starts of the attack depend on the worker count (see shareSeed) and a default that follows
 * the core count would make the same spec give different numbers on different machines.
 * ATFLOW_WORKERS=N forces N; ATFLOW_WORKERS=auto gives one worker per core on `wasm` (where one tfjs
 * instance uses one core) and 1 elsewhere (`tensorflow` has its own thread pools). More than one
 * worker on `tensorflow` is refused: its thread pools would fight the workers for the cores.
 */
export function dataParallelWorkers(backend: BackendName, env: NodeJS.ProcessEnv = process.env, cores: number = defaultWorkerCount()): DataParallelChoice {
  const raw = (env.ATFLOW_WORKERS ?? '').trim();
  if (raw === '') return { workers: 1, reason: 'single thread (ATFLOW_WORKERS=auto or N for data-parallel training)' };
  if (raw === 'auto') {
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
