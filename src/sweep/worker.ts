import * as path from 'path';
import { AtflowError } from '../core/errors';
import { readManifest } from './manifest';
import { atflowRunCommand, type RunnerCommand, spawnRun } from './runner';
import { runsBeingWritten, runsFinished } from './runs-finished';
import { errorFromStderr, newTaskStatus, readTaskStatus, writeTaskStatus } from './task-status';

/**
 * `atflow sweep-worker <manifest.json>`: one task of an array job. The scheduler tells the task which
 * point it is through an environment variable; the worker runs that point's config with `atflow run`,
 * which skips a finished run and resumes an unfinished one, so a retried task is safe.
 */

/** Environment variables naming the task index, in the order they are consulted. */
export const INDEX_VARIABLES = ['JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID'] as const;

export interface WorkerIndex {
  index: number;
  /** Where it came from: '--index' or the variable's name. */
  source: string;
}

/**
 * The point this task runs: `explicit` (the --index flag) if given, else JOB_COMPLETION_INDEX (Kubernetes
 * Indexed Job), else SLURM_ARRAY_TASK_ID (SLURM --array). Errors name the variable and the valid range.
 */
export function resolveWorkerIndex(env: NodeJS.ProcessEnv, runCount: number, explicit?: string): WorkerIndex {
  const candidates: Array<[string, string]> = [];
  if (explicit !== undefined) candidates.push(['--index', explicit]);
  for (const v of INDEX_VARIABLES) {
    const value = env[v];
    if (value !== undefined && value !== '') candidates.push([v, value]);
  }
  if (candidates.length === 0) {
    throw new AtflowError(
      'ARGUMENT',
      `sweep-worker: no run index: set JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (sbatch --array), ` +
        `or pass --index <0..${runCount - 1}>`,
    );
  }
  const [source, raw] = candidates[0];
  const index = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(index) || index >= runCount) {
    throw new AtflowError(
      'ARGUMENT',
      `sweep-worker: ${source}=${JSON.stringify(raw)} is not a run index of this sweep: expected an integer in 0..${runCount - 1} ` +
        `(the manifest lists ${runCount} run(s))`,
      { source, value: raw, runCount },
    );
  }
  return { index, source };
}

export interface SweepWorkerOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides the environment (the CLI's --index). */
  index?: string;
  runner?: RunnerCommand;
  onStatus?: (line: string) => void;
  /** The scheduler cancels the task (SIGTERM): stop the run, record the point as cancelled. */
  signal?: AbortSignal;
}

/**
 * Runs the manifest point this task is assigned and resolves with the run's exit code. Along the way it
 * keeps `<sweep folder>/status/NNNN.json` (task-status.ts) up to date: running, then completed, failed
 * (with the run's error message) or cancelled.
 */
export async function runSweepWorker(manifestPath: string, opts: SweepWorkerOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const status = opts.onStatus ?? ((line: string) => process.stderr.write(line + '\n'));
  const manifest = readManifest(manifestPath);
  const { index, source } = resolveWorkerIndex(env, manifest.runs.length, opts.index);
  const run = manifest.runs[index];
  const sweepDir = path.dirname(manifest.file);
  const values = Object.entries(run.values)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  status(`sweep ${manifest.sweep}: run #${index} of ${manifest.runs.length} (from ${source}) ${values}: ${run.configPath}`);

  const record = newTaskStatus(index, env, readTaskStatus(sweepDir, index));
  if (runsFinished(run.configPath, manifest.outDir)) {
    // A resubmitted sweep: this point finished in an earlier attempt. Its run folder is left untouched.
    writeTaskStatus(sweepDir, { ...record, state: 'completed', skipped: true, endedAt: new Date().toISOString(), seconds: 0, exitCode: 0 });
    status(`sweep ${manifest.sweep}: run #${index} already finished (_SUCCESS), skipped`);
    return 0;
  }
  const writer = runsBeingWritten(run.configPath, manifest.outDir);
  if (writer) {
    // A double-submitted task: the point is running in another task, whose status this one leaves alone.
    status(`sweep ${manifest.sweep}: run #${index} is being written by another task (${writer}); this duplicate stops without touching it`);
    return 2;
  }
  writeTaskStatus(sweepDir, record);
  // Written at once: a scheduler kills the whole task (SIGKILL) soon after its SIGTERM, maybe before the run exits.
  const onAbort = () =>
    writeTaskStatus(sweepDir, {
      ...record,
      state: 'cancelled',
      endedAt: new Date().toISOString(),
      error: 'cancelled by the scheduler (SIGTERM)',
    });
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // The task's stdout/stderr are already its log (pod log, SLURM --output): pass them through, keeping stderr's tail.
  const r = await spawnRun(opts.runner ?? atflowRunCommand(), run.configPath, manifest.outDir, {
    env,
    signal: opts.signal,
    captureStderr: true,
  });
  opts.signal?.removeEventListener('abort', onAbort);
  const code = r.exitCode ?? 1;
  const cancelled = opts.signal?.aborted === true;
  const state = cancelled ? 'cancelled' : code === 0 ? 'completed' : 'failed';
  writeTaskStatus(sweepDir, {
    ...record,
    state,
    endedAt: new Date().toISOString(),
    seconds: Number(r.seconds.toFixed(3)),
    exitCode: r.exitCode,
    signal: r.signal,
    ...(state === 'completed'
      ? {}
      : { error: cancelled ? 'cancelled by the scheduler (SIGTERM)' : (errorFromStderr(r.stderrTail ?? '') ?? `exit ${code}`) }),
  });
  status(
    `sweep ${manifest.sweep}: run #${index} ${code === 0 ? 'ok' : `failed (${r.signal ?? `exit ${code}`})`} after ${r.seconds.toFixed(1)}s`,
  );
  return cancelled && code === 0 ? 143 : code;
}
