import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Observable } from 'rxjs';
import { describeBackend, type BackendName } from '../backend/select';
import { coresPerProcess } from '../run/data-parallel/choose-workers';
import { AtflowError } from '../core/errors';
import type { EpochRecord } from '../core/records';
import type { RunEvent } from '../core/run-event';
import type { RunSink } from '../core/run-sink';
import { defaultRegistry } from '../run/default-registry';
import { executeRun, readTrainedOn } from '../run/execute-run';
import { checkRuns, loadRunsWithPlugins, type ResolvedRun, type RunSpec } from '../config/spec';
import type { Registry } from '../config/registry';
import { RunFolder } from '../store/run-folder';
import { checkSinkNames, sinksByName } from '../logs/sinks';
import { readRunSummary, writeMultiRunSummary, type RunSummary } from '../logs/summary';
import { writeReport } from '../report/report';
import { atflowRunCommand, spawnRun } from '../sweep/runner';
import { oversubscription } from '../run/data-parallel/worker-counts';
import { readEpochRecords, readEvalProtocol, readFinalEval, readRunStop, renderSummaryTable } from './summary-table';

/**
 * `atflow run`'s driver: the CLI's side of running a config (signals, variant processes, the summary
 * table, the exit code). Not library API: it installs SIGINT / SIGTERM handlers while it runs and a
 * second signal ends the process. In code, run a config with loadRuns + executeRun (README).
 */
export interface RunConfigOptions {
  readonly sets?: readonly string[];
  readonly outDir: string;
  readonly backend?: BackendName | 'auto';
  readonly resume?: boolean;
  /** Train finished (and unfinished) runs again from scratch, replacing their folders (`--rerun`). */
  readonly rerun?: boolean;
  readonly quiet?: boolean;
  /** Run only this variant. */
  readonly only?: string;
  /**
   * Variant processes (the CLI's `--workers`): how many variants run at once, each in its own child
   * process; 1 = one after the other in this process, 0 = one per core. Not ATFLOW_WORKERS, the
   * data-parallel threads inside one run: the two multiply.
   */
  readonly processes?: number;
  readonly registry?: Registry;
  /**
   * Plugin modules (the CLI's `--plugin module[#export]`), registered into the registry before the runs;
   * `--workers` child processes get them too.
   */
  readonly plugins?: readonly string[];
  /** Extra sinks by registry name (the CLI's `--sink`), after the config's `logging.sinks`. */
  readonly sinkNames?: readonly string[];
  /** Extra sinks and observers (the CLI adds the progress bar, summary and report). */
  readonly sinks?: (runDir: string, spec: RunSpec) => RunSink[];
  readonly observe?: (events$: Observable<RunEvent>, run: ResolvedRun) => void;
  readonly log?: (line: string) => void;
}

/**
 * SIGINT / SIGTERM while `runConfig` runs: the first asks the runs to stop at the next batch boundary
 * (their last checkpoint kept), a second ends the process now (exit 130). Removed when the runs are done.
 */
function stopOnSignals(log: (l: string) => void): { readonly requested: () => boolean; readonly remove: () => void } {
  let requested = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (requested) process.exit(130);
    requested = true;
    log(
      `atflow: ${sig}: stopping at the next batch boundary (the last ` +
        `checkpoint is kept; continue with --resume). ${sig} again to exit ` +
        `now.`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => requested,
    remove: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The line a skipped run prints: skipped, where, and the backends it was trained on. */
export function skippedLine(runId: string, runDir: string): string {
  const on = readTrainedOn(runDir);
  return (
    `${runId}: skipped, already finished in ${runDir} (trained on ` +
    `${on.length ? on.join(', then ') : 'a backend it did not record'}); ` +
    `--rerun trains it again`
  );
}

/** Runs the variants of a config; returns the process exit code. */
export async function runConfig(configFile: string, options: RunConfigOptions): Promise<number> {
  const log = options.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const registry = options.registry ?? defaultRegistry();
  // the config checked, then its plugins loaded; each run's parts are checked below, before anything is written
  let runs = loadRunsWithPlugins(configFile, registry, {
    sets: options.sets,
    plugins: options.plugins,
    log: options.quiet ? undefined : log,
    check: false,
  });
  if (options.only) {
    const only = runs.filter((r) => r.variant === options.only);
    if (only.length === 0) {
      throw new AtflowError(
        'CONFIG',
        `--only ${options.only}: ${configFile} has no such variant; variants: ${runs.map((r) => r.variant ?? '(none)').join(', ')}`,
      );
    }
    runs = only;
  }
  const requested = options.processes ?? 1;
  if (!Number.isInteger(requested) || requested < 0) {
    throw new AtflowError(
      'ARGUMENT',
      `--workers ${String(requested)}: expected the number of variant processes, an integer ≥ 0 (0 = one per core)`,
      { field: '--workers', value: requested },
    );
  }
  const processes = requested === 0 ? os.availableParallelism() : requested;
  // variant processes check their own run (--only) before they write anything
  if (!(processes > 1 && runs.length > 1)) checkRuns(configFile, runs, registry);
  checkSinkNames(runs, registry, options.sinkNames);
  const signals = stopOnSignals(log);
  /** `ran`: this invocation wrote into the run folder (a finished run that is skipped writes nothing). */
  const outcomes: { run: ResolvedRun; ok: boolean; ran: boolean }[] = [];
  try {
    if (processes > 1 && runs.length > 1) {
      const over = oversubscription(Math.min(processes, runs.length), process.env, os.availableParallelism());
      if (over) log(`atflow: warning: ${over}`);
      const inCode = registry.registeredInCode();
      if (inCode.length) {
        throw new AtflowError(
          'CONFIG',
          `--workers ${processes}: ${inCode.map((e) => `${e.kind} '${e.name}'`).join(', ')} ` +
            `${inCode.length > 1 ? 'were' : 'was'} registered in code ` +
            `(registry.register), which the variant processes cannot repeat; ` +
            `register ${inCode.length > 1 ? 'them' : 'it'} from a module ` +
            `(registry.use(modulePath, exportName), a config's "plugins" or ` +
            `--plugin), or run with --workers 1`,
          { field: '--workers', registeredInCode: inCode },
        );
      }
      await runInProcesses(
        configFile,
        runs,
        processes,
        { ...options, plugins: registry.plugins.map((p) => `${p.module}#${p.export}`) },
        log,
      );
      // each variant process wrote its own run's summary and report; here only the overlay, when a run is newer
      for (const run of runs) outcomes.push({ run, ok: true, ran: false });
    } else {
      const extra = sinksByName(registry, { extra: options.sinkNames, quiet: options.quiet });
      for (const run of runs) {
        if (signals.requested()) break;
        const outcome = await executeRun(run, {
          outDir: options.outDir,
          registry,
          backend: options.backend,
          resume: options.resume,
          rerun: options.rerun,
          sinks: (runDir, spec) => [...extra(runDir, spec), ...(options.sinks ? options.sinks(runDir, spec) : [])],
          observe: options.observe ? (ev$) => options.observe!(ev$, run) : undefined,
          shouldStop: signals.requested,
        });
        if (!options.quiet) {
          log(
            outcome.status === 'skipped'
              ? skippedLine(run.runId, outcome.runDir)
              : `${run.runId}: ${outcome.status}${outcome.backend ? ` on ${describeBackend(outcome.backend)}` : ''} → ${outcome.runDir}`,
          );
        }
        outcomes.push({ run, ok: outcome.status !== 'interrupted', ran: outcome.status !== 'skipped' });
      }
    }
  } finally {
    signals.remove();
  }
  await reportRuns(configFile, runs, outcomes, options);
  return signals.requested() ? 130 : outcomes.every((o) => o.ok) ? 0 : 1;
}

/**
 * After the runs: the multi-run summary.json, report.html per run this invocation ran and one over the
 * variants, the summary table. The files over several runs are rewritten only when a run of this
 * invocation changed (a re-run of finished runs writes nothing: it works on a read-only disk), or when
 * they are older than a run's summary.
 */
async function reportRuns(
  configFile: string,
  runs: readonly ResolvedRun[],
  outcomes: readonly { run: ResolvedRun; ran: boolean }[],
  options: RunConfigOptions,
): Promise<void> {
  const folders = outcomes.map(({ run }) => RunFolder.of(options.outDir, run.runId));
  const summaries: RunSummary[] = [];
  for (const f of folders) if (fs.existsSync(f.file('summary'))) summaries.push(readRunSummary(f.dir));
  const multiSummary = path.join(options.outDir, 'summary.json');
  const overlay = path.join(options.outDir, `${runs[0].spec.name}-report.html`);
  const changed = (file: string) =>
    outcomes.some((o) => o.ran) ||
    olderThan(
      file,
      folders.map((f) => f.file('summary')),
    );
  if (summaries.length > 1 && changed(multiSummary)) writeMultiRunSummary(multiSummary, summaries, { config: path.resolve(configFile) });
  // report.html in each run folder this invocation ran, and one overlaying the variants of a multi-run config
  const finishedDirs = folders.filter((f) => fs.existsSync(f.tableFile('epochs'))).map((f) => f.dir);
  let reportFile: string | null = null;
  for (const [i, o] of outcomes.entries())
    if (o.ran && fs.existsSync(folders[i].tableFile('epochs'))) reportFile = await writeReport([folders[i].dir]);
  if (finishedDirs.length === 1 && !reportFile && fs.existsSync(new RunFolder(finishedDirs[0]).file('report')))
    reportFile = new RunFolder(finishedDirs[0]).file('report');
  if (finishedDirs.length > 1) reportFile = changed(overlay) ? await writeReport(finishedDirs, overlay) : overlay;
  if (options.quiet) return;
  const rows: {
    name: string;
    epochs: EpochRecord[];
    evaluation: ReturnType<typeof readEvalProtocol>;
    stopped: ReturnType<typeof readRunStop>;
    finalEval: ReturnType<typeof readFinalEval>;
  }[] = [];
  for (const [i, { run }] of outcomes.entries()) {
    const dir = folders[i].dir;
    const epochs = readEpochRecords(dir);
    if (epochs.length)
      rows.push({
        name: run.variant ?? run.runId,
        epochs,
        evaluation: readEvalProtocol(dir),
        stopped: readRunStop(dir),
        finalEval: readFinalEval(dir),
      });
  }
  if (rows.length) process.stdout.write(renderSummaryTable(rows) + '\n');
  if (reportFile) process.stdout.write(`report: ${path.resolve(reportFile)}\n`);
}

/** Whether `file` is missing or older than any of `inputs` (that exist). */
function olderThan(file: string, inputs: readonly string[]): boolean {
  if (!fs.existsSync(file)) return true;
  const t = fs.statSync(file).mtimeMs;
  return inputs.some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > t);
}

/**
 * Variant processes: one child `atflow run --only <variant>` per variant, at most `processes` at a
 * time (sweep/runner.ts's spawner), their lines prefixed with the variant. A finished run is not
 * started at all: its skipped line is printed here (unless --rerun).
 */
async function runInProcesses(
  configFile: string,
  runs: readonly ResolvedRun[],
  processes: number,
  options: RunConfigOptions,
  log: (l: string) => void,
): Promise<void> {
  const queue = runs.filter((run) => {
    const folder = RunFolder.of(options.outDir, run.runId);
    if (options.rerun || folder.state() !== 'finished') return true;
    if (!options.quiet) log(skippedLine(run.runId, folder.dir));
    return false;
  });
  const failures: string[] = [];
  // each concurrent variant process gets its share of the cores for its automatic data-parallel
  // count (wasm); a share, not ATFLOW_WORKERS, which tensorflow refuses above 1
  const share = String(coresPerProcess(Math.min(processes, runs.length)));
  const env = { ...process.env, ATFLOW_PROGRESS_LINES: options.quiet ? '0' : '1', ATFLOW_CORES: process.env.ATFLOW_CORES ?? share };
  const one = async (): Promise<void> => {
    for (let run = queue.shift(); run; run = queue.shift()) {
      const variant = run.variant!;
      const args = ['--only', variant, '--workers', '1'];
      for (const s of options.sets ?? []) args.push('--set', s);
      if (options.rerun) args.push('--rerun');
      for (const p of options.plugins ?? []) args.push('--plugin', p);
      for (const sink of options.sinkNames ?? []) args.push('--sink', sink);
      const command = atflowRunCommand({ backend: options.backend, resume: !!options.resume, args });
      const r = await spawnRun(command, configFile, options.outDir, {
        env,
        onLine: (line) => {
          if (line.trim() && !options.quiet) log(`[${variant}] ${line}`);
        },
      });
      if (r.exitCode !== 0) failures.push(`${variant} (exit ${r.exitCode ?? r.signal ?? 1})`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(processes, queue.length) }, one));
  if (failures.length) throw new AtflowError('ARGUMENT', `runs failed: ${failures.join(', ')}`);
}
