import { spawnSync } from 'child_process';
import * as path from 'path';

/**
 * The single-node SLURM cluster of scripts/slurm-local.sh, for tests: started when it is not already
 * running (CI's .ci/run starts it first), stopped afterwards only if this process started it.
 */
const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'slurm-local.sh');

function sh(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const has = (cmd: string) => spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0;

/**
 * Why the SLURM tests cannot run here, or undefined when they can: the packages are installed, or can be
 * (apt-get as root; the install itself happens in startSlurm).
 */
export function slurmUnavailable(): string | undefined {
  const root = process.getuid?.() === 0;
  if (has('sbatch') && has('slurmctld') && has('slurmd') && has('munged')) {
    // The daemons run as SlurmUser=root; someone else may have started the cluster already.
    if (!root && sh(['status']).status !== 0)
      return 'the local SLURM cluster is not running and starting it needs root (sudo bash scripts/slurm-local.sh start)';
    return undefined;
  }
  if (!has('apt-get')) return 'slurm-wlm and munge are not installed and apt-get is not available to install them';
  if (!root)
    return 'slurm-wlm and munge are not installed; installing them needs root (sudo apt-get install slurm-wlm munge, or run .ci/run)';
  return undefined;
}

export interface SlurmCluster {
  /** process.env plus SLURM_CONF: the environment for sbatch, squeue, scancel, sacct. */
  env: NodeJS.ProcessEnv;
  startedHere: boolean;
  /** Stops the cluster if this process started it. */
  stop(): void;
}

export function startSlurm(): SlurmCluster {
  const install = sh(['install']);
  if (install.status !== 0) throw new Error(`installing slurm-wlm and munge failed: ${install.stderr}`);
  const conf = sh(['env'])
    .stdout.trim()
    .replace(/^export SLURM_CONF=/, '');
  const running = sh(['status']).status === 0;
  if (!running) {
    const start = sh(['start']);
    if (start.status !== 0) throw new Error(`the SLURM cluster did not start: ${start.stderr}`);
  }
  return {
    env: { ...process.env, SLURM_CONF: conf },
    startedHere: !running,
    stop: () => {
      if (!running) sh(['stop']);
    },
  };
}

/** Runs a SLURM client command (sbatch, squeue, scancel, sacct) and returns its stdout; throws with its stderr. */
export function slurm(cluster: SlurmCluster, cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { env: cluster.env, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The job's tasks still pending or running, as squeue lists them ("5_[2-3]", "5_1", ...). */
export function activeTasks(cluster: SlurmCluster, jobId: string): string[] {
  return slurm(cluster, 'squeue', ['-h', '-j', jobId, '-o', '%i %t'])
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** Waits until no task of the array job is pending, running or completing. */
export async function waitForJob(cluster: SlurmCluster, jobId: string, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (activeTasks(cluster, jobId).length > 0) {
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} still active after ${timeoutMs / 1000}s: ${activeTasks(cluster, jobId).join(', ')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Job completion records (`sacct -c`, the jobcomp/filetxt plugin): raw job id → state and exit code. */
export function completions(cluster: SlurmCluster): Map<string, { state: string; exitCode: string }> {
  const out = slurm(cluster, 'sacct', ['-c', '-n', '-P', '-o', 'jobid,state,exitcode']);
  const map = new Map<string, { state: string; exitCode: string }>();
  for (const line of out.split('\n')) {
    const [jobId, state, exitCode] = line.split('|');
    if (jobId && state) map.set(jobId.trim(), { state: state.trim(), exitCode: (exitCode ?? '').trim() });
  }
  return map;
}
