import { AtflowError } from '../../core/errors';

/**
 * The two kinds of "workers", which multiply: `--workers` counts variant processes (runs at once, each
 * its own process: `atflow run` over a config's variants, the sweep's local executor), ATFLOW_WORKERS
 * the data-parallel threads inside one run (src/run/data-parallel/choose-workers.ts).
 */

/** The CLI's `--workers` string: an integer ≥ 0, else an error naming the value (never a silent 1). */
export function parseVariantProcesses(raw: string | undefined): number {
  if (raw === undefined) return 1;
  if (!/^\s*\d+\s*$/.test(raw)) {
    throw new AtflowError(
      'ARGUMENT',
      `--workers '${raw}': expected the number of variant processes, an ` +
        `integer ≥ 0 (0 = one per core); data-parallel threads inside one run ` +
        `are set by ATFLOW_WORKERS`,
      { field: '--workers', value: raw },
    );
  }
  return Number(raw);
}

/**
 * `--workers` variant processes × ATFLOW_WORKERS data-parallel threads each: a warning naming both
 * when the product exceeds the cores (the processes then fight for them), else null.
 */
export function oversubscription(processes: number, env: NodeJS.ProcessEnv, cores: number): string | null {
  const raw = (env.ATFLOW_WORKERS ?? '').trim();
  if (processes <= 1 || raw === '') return null;
  const perRun = raw === 'auto' ? cores : Number(raw);
  if (!Number.isInteger(perRun) || perRun * processes <= cores) return null;
  return (
    `--workers ${processes} variant processes × ATFLOW_WORKERS=${raw} ` +
    `data-parallel threads each = ${perRun * processes} threads on ${cores} ` +
    `cores; they multiply, so lower one of them (e.g. --workers ` +
    `${Math.max(1, Math.floor(cores / perRun))})`
  );
}
