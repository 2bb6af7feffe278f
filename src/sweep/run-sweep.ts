import { AtflowError } from '../core/errors';
import { writeArrayJobs, type ArrayJobFiles } from './array-executor';
import { materialiseSweep, type MaterialisedSweep } from './expand';
import { runLocal, type LocalSweepResult } from './local-executor';
import { atflowRunCommand, type RunnerCommand } from './runner';
import { runsFinished } from './runs-finished';
import { EXECUTOR_KINDS, loadSweepSpec, parseExecutor, withSets, type SweepSpec } from './sweep-spec';

/**
 * `atflow sweep` as one function: load the sweep file, write every point's config and the manifest, then
 * hand them to the executor. Idempotency lives in `atflow run` (finished runs are skipped, unfinished ones
 * resume), so running the same sweep again is how a sweep is resumed.
 */
export interface SweepOptions {
  /** Output root; overrides the sweep file's `out`. */
  out?: string;
  /** Use this executor (with its defaults) instead of the file's. */
  executor?: 'local' | 'array';
  /** Local executor: concurrent runs; overrides the file's `workers`. */
  workers?: number;
  /** Write configs and manifest only. */
  dryRun?: boolean;
  /** `--set path=value` overrides of the base config (as `atflow run --set`); a path an axis sets is refused. */
  sets?: readonly string[];
  /** Local executor: `atflow run --backend` for every run. */
  backend?: string;
  /** Local executor: command that executes one config (tests); default `atflow run ... --quiet`. */
  runner?: RunnerCommand;
  onStatus?: (line: string) => void;
  /** Local executor: skip points whose runs are all finished without starting a process (see runLocal). */
  isFinished?: (configPath: string, outDir: string) => boolean;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Array executor: the directory paths in job files are relative to (the task's working dir). */
  cwd?: string;
}

interface Common {
  spec: SweepSpec;
  materialised: MaterialisedSweep;
  ok: boolean;
}
export type SweepResult =
  | (Common & { kind: 'dry-run' })
  | (Common & { kind: 'local'; local: LocalSweepResult })
  | (Common & { kind: 'array'; files: ArrayJobFiles });

export async function runSweep(sweep: string | SweepSpec, opts: SweepOptions = {}): Promise<SweepResult> {
  if (opts.executor !== undefined && !(EXECUTOR_KINDS as readonly string[]).includes(opts.executor)) {
    throw new AtflowError('ARGUMENT', `--executor '${opts.executor}': expected one of ${EXECUTOR_KINDS.join(', ')}`);
  }
  const loaded = withSets(typeof sweep === 'string' ? loadSweepSpec(sweep) : sweep, opts.sets ?? []);
  const executor =
    opts.executor !== undefined && opts.executor !== loaded.executor.kind
      ? parseExecutor({ kind: opts.executor }, '--executor')
      : loaded.executor;
  const spec: SweepSpec = { ...loaded, executor, out: opts.out ?? loaded.out };
  const status = opts.onStatus ?? ((line: string) => process.stdout.write(line + '\n'));

  const materialised = materialiseSweep(spec);
  if (opts.dryRun) {
    status(`sweep ${spec.name}: wrote ${materialised.manifest.runs.length} config(s) and ${materialised.manifestPath}`);
    return { kind: 'dry-run', spec, materialised, ok: true };
  }
  if (spec.executor.kind === 'array') {
    const files = writeArrayJobs(materialised.manifest, spec.executor, opts.cwd);
    status(
      `sweep ${spec.name}: ${materialised.manifest.runs.length} run(s)\n` +
        `  manifest:   ${materialised.manifestPath}\n` +
        `  Kubernetes: kubectl apply -f ${files.kubernetesPath}\n` +
        `  SLURM:      sbatch ${files.slurmPath}`,
    );
    return { kind: 'array', spec, materialised, files, ok: true };
  }
  const local = await runLocal(materialised.manifest, {
    workers: opts.workers ?? spec.executor.workers,
    gpus: spec.executor.gpus,
    runner: opts.runner ?? atflowRunCommand({ backend: opts.backend }),
    onStatus: status,
    isFinished: opts.isFinished ?? runsFinished,
    env: opts.env,
    signal: opts.signal,
  });
  return { kind: 'local', spec, materialised, local, ok: local.ok };
}
