import * as os from 'os';
import { coresPerProcess } from '../run/data-parallel/choose-workers';
import * as path from 'path';
import { detectGpus } from './gpus';
import type { SweepManifest } from './manifest';
import { atflowRunCommand, type RunnerCommand, spawnRun } from './runner';
import { defaultWorkers } from './sweep-spec';
import { oversubscription } from '../run/data-parallel/worker-counts';

/**
 * The `local` executor: a pool of N worker slots, each running one sweep point at a time as its own child
 * process (so a crashed or leaking run cannot take the others down, and each gets a fresh tf backend).
 * Slot k is pinned to GPU k (mod #GPUs) through CUDA_VISIBLE_DEVICES when GPUs are present.
 */
export interface LocalExecutorOptions {
  /** Concurrent runs; default: #GPUs when GPUs are used, else os.availableParallelism(). */
  workers?: number;
  /** 'auto' (default): detect; 'none': do not touch CUDA_VISIBLE_DEVICES; or explicit device ids. */
  gpus?: 'auto' | 'none' | string[];
  /** The command that executes one config; default `atflow run <config> --out <out> --resume --quiet`. */
  runner?: RunnerCommand;
  /** One line per finished run, plus a start and a summary line; default: stdout. */
  onStatus?: (line: string) => void;
  /** Base environment of the children (and of GPU detection); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where the children's output goes, one `NNNN.log` per point; default `<manifest dir>/logs`. */
  logDir?: string;
  /** Only these point indices (e.g. a retry of the failed ones); default all. */
  indices?: number[];
  /** Abort: start nothing new, SIGTERM the running children, resolve with what finished. */
  signal?: AbortSignal;
  /**
   * Optional shortcut: true when every run a config defines already has `_SUCCESS` in `outDir`. Such a
   * point is reported as skipped without starting a process (which costs seconds of start-up each);
   * without it, the runner itself skips finished runs.
   */
  isFinished?: (configPath: string, outDir: string) => boolean;
}

export interface RunOutcome {
  index: number;
  configPath: string;
  values: Record<string, unknown>;
  /** null when killed by a signal. */
  exitCode: number | null;
  /** Not started: `isFinished` said every run of it is done. */
  skipped?: boolean;
  signal: NodeJS.Signals | null;
  seconds: number;
  gpu?: string;
  logFile: string;
}

export interface LocalSweepResult {
  outcomes: RunOutcome[];
  /** Points that exited non-zero or were killed. */
  failed: RunOutcome[];
  /** Points never started because the sweep was aborted. */
  notStarted: number[];
  workers: number;
  gpus: string[];
  ok: boolean;
}

export async function runLocal(manifest: SweepManifest, opts: LocalExecutorOptions = {}): Promise<LocalSweepResult> {
  const env = opts.env ?? process.env;
  const gpus = opts.gpus === 'none' ? [] : Array.isArray(opts.gpus) ? opts.gpus : detectGpus(env);
  const workers = Math.max(1, opts.workers ?? defaultWorkers(gpus.length));
  const runner = opts.runner ?? atflowRunCommand();
  const status = opts.onStatus ?? ((line: string) => process.stdout.write(line + '\n'));
  const logDir = opts.logDir ?? path.join(path.dirname(manifest.file), 'logs');
  const wanted = opts.indices ? new Set(opts.indices) : undefined;
  const queue = manifest.runs.filter((r) => !wanted || wanted.has(r.index));
  const total = queue.length;
  const width = String(manifest.runs.length - 1).length;

  status(
    `sweep ${manifest.sweep}: ${total} run(s), ${Math.min(workers, total)} at a time` +
      (gpus.length > 0 ? `, GPUs ${gpus.join(',')} (one per worker)` : '') +
      `, logs in ${path.relative(process.cwd(), logDir) || '.'}`,
  );

  const over = gpus.length === 0 ? oversubscription(Math.min(workers, total), env, os.availableParallelism()) : null;
  if (over) status(`warning: ${over}`);

  const outcomes: RunOutcome[] = [];
  let next = 0;
  const worker = async (slot: number): Promise<void> => {
    const gpu = gpus.length > 0 ? gpus[slot % gpus.length] : undefined;
    // concurrent runs share the cores: each gets its part for its automatic data-parallel count (wasm);
    // a share, not ATFLOW_WORKERS, which tensorflow refuses above 1
    const cores = { ATFLOW_CORES: env.ATFLOW_CORES ?? String(coresPerProcess(Math.min(workers, total))) };
    const childEnv = gpu === undefined ? { ...env, ...cores } : { ...env, ...cores, CUDA_VISIBLE_DEVICES: gpu };
    while (next < queue.length && !opts.signal?.aborted) {
      const run = queue[next++];
      const logFile = path.join(logDir, `${path.basename(run.configPath, '.json')}.log`);
      if (opts.isFinished?.(run.configPath, manifest.outDir)) {
        const outcome: RunOutcome = { ...run, exitCode: 0, signal: null, seconds: 0, skipped: true, gpu, logFile };
        outcomes.push(outcome);
        status(statusLine(outcome, outcomes.length, total, width));
        continue;
      }
      const r = await spawnRun(runner, run.configPath, manifest.outDir, { env: childEnv, logFile, signal: opts.signal });
      const outcome: RunOutcome = { index: run.index, configPath: run.configPath, values: run.values, ...r, gpu, logFile };
      outcomes.push(outcome);
      status(statusLine(outcome, outcomes.length, total, width));
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, total) }, (_, slot) => worker(slot)));

  outcomes.sort((a, b) => a.index - b.index);
  const failed = outcomes.filter((o) => o.exitCode !== 0);
  const done = new Set(outcomes.map((o) => o.index));
  const notStarted = queue.filter((r) => !done.has(r.index)).map((r) => r.index);
  const skipped = outcomes.filter((o) => o.skipped).length;
  status(
    `sweep ${manifest.sweep}: ${outcomes.length - failed.length} ` +
      `ok${skipped > 0 ? ` (${skipped} already done)` : ''}, ${failed.length} ` +
      `failed` +
      (notStarted.length > 0 ? `, ${notStarted.length} not started (aborted)` : '') +
      (failed.length > 0 ? `; failed: ${failed.map((f) => f.index).join(', ')}` : ''),
  );
  return { outcomes, failed, notStarted, workers, gpus, ok: failed.length === 0 && notStarted.length === 0 };
}

/** "[3/10] ok     #0004  12.3s gpu=1  trainer.name=trades labelNoise.rate=0.4" */
export function statusLine(o: RunOutcome, done: number, total: number, width = 4): string {
  const verdict = o.skipped ? 'done  ' : o.exitCode === 0 ? 'ok    ' : o.signal ? `killed (${o.signal})` : `FAILED (exit ${o.exitCode})`;
  const values = Object.entries(o.values)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const where = o.exitCode === 0 ? '' : `  log: ${path.relative(process.cwd(), o.logFile)}`;
  return (
    `[${done}/${total}] ${verdict} #${String(o.index).padStart(width, '0')} ` +
    `${o.seconds.toFixed(1)}s${o.gpu !== undefined ? ` gpu=${o.gpu}` : ''} ` +
    ` ${values}${where}`
  );
}
