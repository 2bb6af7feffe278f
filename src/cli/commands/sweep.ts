import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../../core/errors';
import { runSweep } from '../../sweep/run-sweep';
import { submitSlurm } from '../../sweep/submit-slurm';
import { runSweepWorker } from '../../sweep/worker';
import { atflowRunCommand } from '../../sweep/runner';
import { readManifest } from '../../sweep/manifest';
import { readSweepStatus, type SweepPointStatus } from '../../sweep/task-status';

interface SweepFlags {
  out?: string;
  workers?: string;
  executor?: 'local' | 'array';
  dryRun?: boolean;
  backend?: string;
  submit?: boolean;
  set: string[];
}

/**
 * `atflow sweep <sweep.json>`: every combination of the axes, run by a local worker pool or written out as
 * a Kubernetes / SLURM array job. `atflow sweep-worker <manifest.json>`: one task of such an array job.
 */
export function register(program: Command): void {
  program
    .command('sweep')
    .description(
      'run the Cartesian product of a base config and axes: locally (a pool of worker processes, one GPU each when present) ' +
        'or as a Kubernetes Indexed Job / SLURM array (executor "array"); finished runs are skipped, unfinished ones resume',
    )
    .argument('<sweep>', 'sweep file: { "base": "<config>", "axes": { "<dotted.path>": [values...] }, "executor": {...}, "out": "runs" }')
    .option('--out <dir>', 'output root (overrides the sweep file\'s "out"; default runs)')
    .option(
      '--workers <n>',
      'local executor: run processes at once (default: one per GPU if ' +
        'present, else one per core); ATFLOW_WORKERS, data-parallel threads ' +
        'inside each run, multiplies with it',
    )
    .option('--executor <kind>', 'local | array (overrides the sweep file)')
    .option('--dry-run', 'only write <out>/sweeps/<name>/configs/*.json and manifest.json')
    .option('--backend <name>', 'local executor: backend for every run (atflow run --backend)')
    .option(
      '--set <path=value>',
      "override a field of the sweep's base config, as atflow run --set (repeatable; a path an axis sets is refused)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--submit', 'array executor (implied): submit sweep.sbatch with sbatch and print the job id; run again to resume')
    .addHelpText('after', '\nSee docs/sweeps.md for the file format, the executors and the output layout.')
    .action(async (file: string, flags: SweepFlags) => {
      if (flags.submit && flags.executor === 'local')
        throw new AtflowError('ARGUMENT', '--submit needs the array executor, not --executor local');
      if (flags.submit && flags.dryRun) throw new AtflowError('ARGUMENT', '--submit and --dry-run exclude each other');
      const workers = flags.workers === undefined ? undefined : Number(flags.workers);
      if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) {
        throw new AtflowError('ARGUMENT', `--workers '${flags.workers}': expected a positive integer`);
      }
      // Ctrl-C reaches the children too; without this the pool would go on starting new runs.
      await untilSignalled(async (signal) => {
        const result = await runSweep(file, {
          out: flags.out,
          workers,
          executor: flags.submit ? 'array' : flags.executor,
          dryRun: flags.dryRun,
          backend: flags.backend,
          sets: flags.set,
          signal,
        });
        if (flags.submit && result.kind === 'array') {
          const job = submitSlurm(result.files.slurmPath);
          process.stdout.write(
            `submitted array job ${job} (${result.materialised.manifest.runs.length} ` +
              `task(s)): squeue -j ${job}; atflow sweep-status ${path.dirname(result.files.manifestPath)}\n`,
          );
        }
        if (signal.aborted) process.exitCode = 130;
        else if (!result.ok) process.exitCode = 1;
      });
    });

  program
    .command('sweep-worker')
    .description('run one point of a sweep manifest: the index comes from JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID (SLURM)')
    .argument('<manifest>', 'manifest.json written by `atflow sweep` (<out>/sweeps/<name>/manifest.json)')
    .option('--index <i>', 'run this point instead of the one the environment names')
    .option('--backend <name>', 'backend for the run (atflow run --backend)')
    .action(async (manifest: string, flags: { index?: string; backend?: string }) => {
      // scancel / a deleted pod send SIGTERM: stop the run (it resumes next time) and record the point as cancelled.
      await untilSignalled(async (signal) => {
        process.exitCode = await runSweepWorker(manifest, {
          index: flags.index,
          runner: atflowRunCommand({ backend: flags.backend }),
          signal,
        });
      });
    });

  program
    .command('sweep-status')
    .description("each point of an array-job sweep: pending, running, completed, failed (with the run's error) or cancelled")
    .argument('<manifest>', 'manifest.json of the sweep (<out>/sweeps/<name>/manifest.json) or its folder')
    .option('--json', 'print the merged per-task records as JSON')
    .action((manifest: string, flags: { json?: boolean }) => {
      const file = fs.existsSync(manifest) && fs.statSync(manifest).isDirectory() ? path.join(manifest, 'manifest.json') : manifest;
      const points = readSweepStatus(readManifest(file));
      if (flags.json) {
        process.stdout.write(JSON.stringify(points, null, 2) + '\n');
      } else {
        for (const line of formatSweepStatus(points)) process.stdout.write(line + '\n');
      }
      if (points.some((p) => p.state === 'failed' || p.state === 'cancelled')) process.exitCode = 1;
    });
}

/** "#0002 failed     3.1s  slurm job 7 (array 5_2)  data={...}" plus an indented error line. */
function formatSweepStatus(points: SweepPointStatus[]): string[] {
  const lines: string[] = [];
  for (const p of points) {
    const s = p.status;
    const where =
      s?.scheduler.kind === 'slurm'
        ? `slurm job ${s.scheduler.jobId}${s.scheduler.arrayJobId ? ` (array ${s.scheduler.arrayJobId}_${s.scheduler.arrayTaskId})` : ''}`
        : s?.scheduler.kind === 'kubernetes'
          ? `pod ${s.scheduler.pod ?? '?'}`
          : '';
    const values = Object.entries(p.values)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const state = `${p.state}${s?.skipped ? ' (skipped)' : ''}`.padEnd(20);
    const secs = s?.seconds !== undefined ? `${s.seconds.toFixed(1)}s`.padStart(8) : ''.padStart(8);
    lines.push(`#${String(p.index).padStart(4, '0')} ${state}${secs}  ${where ? where + '  ' : ''}${values}`);
    if (s?.error) lines.push(`      error: ${s.error}`);
  }
  const count = (state: string) => points.filter((p) => p.state === state).length;
  lines.push(
    `${points.length} point(s): ${['completed', 'running', 'failed', 'cancelled', 'pending'].map((st) => `${count(st)} ${st}`).join(', ')}`,
  );
  return lines;
}

/** Runs `work` with a signal that SIGINT / SIGTERM abort, and removes those listeners afterwards. */
async function untilSignalled(work: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await work(abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
