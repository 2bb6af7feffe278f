import { spawnSync } from 'child_process';
import { AtflowError } from '../core/errors';

/**
 * `atflow sweep --submit`: hands sweep.sbatch to `sbatch --parsable` and returns the array job's id.
 * Resubmitting the same sweep is how it resumes (finished points are skipped by the workers).
 */
export function submitSlurm(script: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync('sbatch', ['--parsable', script], { env, encoding: 'utf8' });
  if (r.error) {
    const why =
      (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'sbatch is not on PATH (is this a SLURM login node?)' : r.error.message;
    throw new AtflowError('IO', `--submit: cannot run sbatch ${script}: ${why}`, { script });
  }
  if (r.status !== 0) {
    throw new AtflowError('IO', `--submit: sbatch ${script} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`, { script });
  }
  // --parsable prints "<jobid>" or "<jobid>;<cluster>".
  const id = r.stdout.trim().split(';')[0];
  if (!/^\d+$/.test(id)) throw new AtflowError('IO', `--submit: sbatch printed no job id: ${JSON.stringify(r.stdout)}`, { script });
  return id;
}
