import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { SweepManifest } from './manifest';
import { runsFinished } from './runs-finished';
import { writeJsonDurable } from '../core/durable-file';

/**
 * Per-task status of an array job: `<sweep folder>/status/NNNN.json`, written (atomically) only by the task
 * that runs point NNNN. Tasks never rewrite a shared file, so any number of them can finish at once without
 * losing each other's records; `readSweepStatus` merges the files with the manifest when someone asks.
 */
export type TaskState = 'running' | 'completed' | 'failed' | 'cancelled';

/** Which scheduler ran the task, and its ids there (to look it up with sacct / kubectl). */
export type TaskScheduler =
  | { kind: 'slurm'; jobId: string; arrayJobId?: string; arrayTaskId?: string }
  | { kind: 'kubernetes'; pod?: string; completionIndex: string }
  | { kind: 'none' };

export interface TaskStatus {
  index: number;
  state: TaskState;
  /** 1 for the first attempt at this point, +1 for each resubmission or retry. */
  attempt: number;
  /** The point had finished in an earlier attempt: nothing was run. */
  skipped?: boolean;
  startedAt: string;
  endedAt?: string;
  seconds?: number;
  exitCode?: number | null;
  signal?: string | null;
  /** Why the run failed: the `atflow: ...` line it printed, else the last line of its stderr. */
  error?: string;
  host: string;
  pid: number;
  scheduler: TaskScheduler;
}

export function taskStatusPath(sweepDir: string, index: number): string {
  return path.join(sweepDir, 'status', `${String(index).padStart(4, '0')}.json`);
}

export function readTaskStatus(sweepDir: string, index: number): TaskStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(taskStatusPath(sweepDir, index), 'utf8')) as TaskStatus;
  } catch {
    return undefined; // never started, or written by nobody yet
  }
}

export function writeTaskStatus(sweepDir: string, status: TaskStatus): void {
  writeJsonDurable(taskStatusPath(sweepDir, status.index), status, { mkdir: true });
}

/** The scheduler's view of this process, from the variables SLURM and Kubernetes set in a task. */
export function schedulerFromEnv(env: NodeJS.ProcessEnv): TaskScheduler {
  if (env.SLURM_JOB_ID) {
    return { kind: 'slurm', jobId: env.SLURM_JOB_ID, arrayJobId: env.SLURM_ARRAY_JOB_ID, arrayTaskId: env.SLURM_ARRAY_TASK_ID };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) return { kind: 'kubernetes', pod: env.HOSTNAME, completionIndex: env.JOB_COMPLETION_INDEX };
  return { kind: 'none' };
}

export function newTaskStatus(index: number, env: NodeJS.ProcessEnv, previous?: TaskStatus): TaskStatus {
  return {
    index,
    state: 'running',
    attempt: (previous?.attempt ?? 0) + 1,
    startedAt: new Date().toISOString(),
    host: os.hostname(),
    pid: process.pid,
    scheduler: schedulerFromEnv(env),
  };
}

/**
 * The error a failed `atflow run` reported, from the tail of its stderr: the last `atflow: ...` line (an
 * AtflowError), else the first line of a stack trace (`Error: ...`), else the last non-empty line.
 */
export function errorFromStderr(tail: string): string | undefined {
  const lines = tail
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
  const atflow = lines.filter((l) => l.startsWith('atflow: '));
  if (atflow.length > 0) return atflow[atflow.length - 1].slice('atflow: '.length);
  const thrown = lines.find((l) => /^\w*Error\b.*:/.test(l));
  return thrown ?? lines[lines.length - 1];
}

/** One manifest point with its task's status (`pending` = no task has written one yet). */
export interface SweepPointStatus {
  index: number;
  values: Record<string, unknown>;
  config: string;
  state: TaskState | 'pending';
  status?: TaskStatus;
}

/**
 * Every point with its task's record. A point without one (run by the local executor, or by hand) counts
 * as completed when its runs have `_SUCCESS`, else as pending.
 */
export function readSweepStatus(manifest: SweepManifest): SweepPointStatus[] {
  const dir = path.dirname(manifest.file);
  return manifest.runs.map((r) => {
    const status = readTaskStatus(dir, r.index);
    const state = status?.state ?? (runsFinished(r.configPath, manifest.outDir) ? 'completed' : 'pending');
    return { index: r.index, values: r.values, config: r.configPath, state, ...(status ? { status } : {}) };
  });
}
