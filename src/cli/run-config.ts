import { spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { describeBackend, type BackendName } from '../backend/select';
import { coresPerProcess } from '../run/data-parallel/choose-workers';
import { AtflowError, unknownName } from '../core/errors';
import type { EpochRecord } from '../core/records';
import { defaultRegistry } from '../run/default-registry';
import { executeRun, type RunOutcome } from '../run/execute-run';
import { loadRuns, type ResolvedRun, type RunSpec } from '../config/spec';
import { runSinkNames, type SinkOptions } from '../logs/sinks';
import { readRunSummary, writeMultiRunSummary, type RunSummary } from '../logs/summary';
import { writeReport } from '../report/report';
import * as fs from 'fs';
import { readEpochRecords, readEvalProtocol, renderSummaryTable } from './summary-table';
import { parsePluginRef, type PluginRef, type Registry } from '../config/registry';
import type { RunSink } from '../core/run-sink';
import type { Observable } from 'rxjs';
import type { RunEvent } from '../core/run-event';
import { oversubscription } from '../run/data-parallel/worker-counts';
import { RunFolder } from '../store/run-folder';

export interface RunConfigOptions {
  readonly sets?: readonly string[];
  readonly outDir: string;
  readonly backend?: BackendName | 'auto';
  readonly resume?: boolean;
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

/** Sinks every CLI run gets, built by name through the registry (runSinkNames), plus whatever the options add. */
function runSinks(options: RunConfigOptions, registry: Registry): (runDir: string, spec: RunSpec) => RunSink[] {
  return (runDir, spec) => [
    ...runSinkNames(spec, options.sinkNames).map((name) => registry.create<RunSink, SinkOptions>('sink', name, { runDir, spec, quiet: !!options.quiet })),
    ...(options.sinks ? options.sinks(runDir, spec) : []),
  ];
}

/** Every sink name a run will build is registered: checked before any run starts, naming the field. */
function checkSinkNames(runs: readonly ResolvedRun[], options: RunConfigOptions, registry: Registry): void {
  for (const run of runs) {
    for (const name of runSinkNames(run.spec, options.sinkNames)) {
      if (registry.has('sink', name)) continue;
      const e = unknownName('sink', name, registry.list('sink'));
      const field = (run.spec.logging.sinks ?? []).includes(name) ? 'logging.sinks' : '--sink';
      throw new AtflowError(e.code, `${field}: ${e.message}`, { ...e.details, field });
    }
  }
}

let stopRequested = false;
let signalsInstalled = false;
function installSignalHandlers(log: (l: string) => void): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  const onSignal = (sig: string) => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    log(`atflow: ${sig}: stopping at the next batch boundary (the last checkpoint is kept; continue with --resume). ${sig} again to exit now.`);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

function usePlugin(registry: Registry, ref: PluginRef): void {
  registry.use(ref.module, ref.export);
}

/** Runs the variants of a config; returns the process exit code. */
export async function runConfig(configFile: string, options: RunConfigOptions): Promise<number> {
  const log = options.log ?? ((l: string) => process.stderr.write(l + '\n'));
  let runs = loadRuns(configFile, [...(options.sets ?? [])]);
  if (options.only) {
    const only = runs.filter((r) => r.variant === options.only);
    if (only.length === 0) {
      throw new AtflowError('CONFIG', `--only ${options.only}: ${configFile} has no such variant; variants: ${runs.map((r) => r.variant ?? '(none)').join(', ')}`);
    }
    runs = only;
  }
  const requested = options.processes ?? 1;
  if (!Number.isInteger(requested) || requested < 0) {
    throw new AtflowError('ARGUMENT', `--workers ${String(requested)}: expected the number of variant processes, an integer ≥ 0 (0 = one per core)`, { field: '--workers', value: requested });
  }
  const processes = requested === 0 ? os.availableParallelism() : requested;
  const registry = options.registry ?? defaultRegistry();
  for (const p of options.plugins ?? []) usePlugin(registry, parsePluginRef(p));
  // a config's plugins, relative to the config file
  for (const run of runs) for (const p of run.spec.plugins ?? []) usePlugin(registry, parsePluginRef(p, path.dirname(path.resolve(configFile))));
  checkSinkNames(runs, options, registry);
  installSignalHandlers(log);
  /** `ran`: this invocation wrote into the run folder (a finished run that is skipped writes nothing). */
  const outcomes: { run: ResolvedRun; ok: boolean; ran: boolean }[] = [];
  if (processes > 1 && runs.length > 1) {
    const over = oversubscription(Math.min(processes, runs.length), process.env, os.availableParallelism());
    if (over) log(`atflow: warning: ${over}`);
    const inCode = registry.registeredInCode();
    if (inCode.length) {
      throw new AtflowError(
        'CONFIG',
        `--workers ${processes}: ${inCode.map((e) => `${e.kind} '${e.name}'`).join(', ')} ${inCode.length > 1 ? 'were' : 'was'} registered in code (registry.register), which the variant processes cannot repeat; register ${inCode.length > 1 ? 'them' : 'it'} from a module (registry.use(modulePath, exportName), a config's "plugins" or --plugin), or run with --workers 1`,
        { field: '--workers', registeredInCode: inCode },
      );
    }
    await runInWorkers(configFile, runs, processes, { ...options, plugins: registry.plugins.map((p) => `${p.module}#${p.export}`) }, log);
    // each variant process wrote its own run's summary and report; here only the overlay, when a run is newer
    for (const run of runs) outcomes.push({ run, ok: true, ran: false });
  } else {
    for (const run of runs) {
      if (stopRequested) break;
      const outcome: RunOutcome = await executeRun(run, {
        outDir: options.outDir,
        registry,
        backend: options.backend,
        resume: options.resume,
        sinks: runSinks(options, registry),
        observe: options.observe ? (ev$) => options.observe!(ev$, run) : undefined,
        shouldStop: () => stopRequested,
      });
      if (!options.quiet) {
        const what = outcome.status === 'skipped' ? 'already finished (skipped)' : outcome.status;
        log(`${run.runId}: ${what}${outcome.backend ? ` on ${describeBackend(outcome.backend)}` : ''} → ${outcome.runDir}`);
      }
      outcomes.push({ run, ok: outcome.status !== 'interrupted', ran: outcome.status !== 'skipped' });
    }
  }
  const folders = outcomes.map(({ run }) => RunFolder.of(options.outDir, run.runId));
  const summaries: RunSummary[] = [];
  for (const f of folders) if (fs.existsSync(f.file('summary'))) summaries.push(readRunSummary(f.dir));
  // the files over several runs are rewritten only when a run of this invocation changed (a re-run of
  // finished runs writes nothing: it works on a read-only disk), or when they are older than a run's summary
  const multiSummary = path.join(options.outDir, 'summary.json');
  const overlay = path.join(options.outDir, `${runs[0].spec.name}-report.html`);
  const changed = (file: string) => outcomes.some((o) => o.ran) || olderThan(file, folders.map((f) => f.file('summary')));
  if (summaries.length > 1 && changed(multiSummary)) writeMultiRunSummary(multiSummary, summaries, { config: path.resolve(configFile) });
  // report.html in each run folder this invocation ran, and one overlaying the variants of a multi-run config
  const finishedDirs = folders.filter((f) => fs.existsSync(f.tableFile('epochs'))).map((f) => f.dir);
  let reportFile: string | null = null;
  for (const [i, o] of outcomes.entries()) if (o.ran && fs.existsSync(folders[i].tableFile('epochs'))) reportFile = await writeReport([folders[i].dir]);
  if (finishedDirs.length === 1 && !reportFile && fs.existsSync(new RunFolder(finishedDirs[0]).file('report'))) reportFile = new RunFolder(finishedDirs[0]).file('report');
  if (finishedDirs.length > 1) reportFile = changed(overlay) ? await writeReport(finishedDirs, overlay) : overlay;
  if (!options.quiet) {
    const rows: { name: string; epochs: EpochRecord[]; evaluation: ReturnType<typeof readEvalProtocol> }[] = [];
    for (const { run } of outcomes) {
      const dir = path.join(options.outDir, run.runId);
      const epochs = readEpochRecords(dir);
      if (epochs.length) rows.push({ name: run.variant ?? run.runId, epochs, evaluation: readEvalProtocol(dir) });
    }
    if (rows.length) process.stdout.write(renderSummaryTable(rows) + '\n');
    if (reportFile) process.stdout.write(`report: ${path.resolve(reportFile)}\n`);
  }
  return stopRequested ? 130 : outcomes.every((o) => o.ok) ? 0 : 1;
}

/** Whether `file` is missing or older than any of `inputs` (that exist). */
function olderThan(file: string, inputs: readonly string[]): boolean {
  if (!fs.existsSync(file)) return true;
  const t = fs.statSync(file).mtimeMs;
  return inputs.some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > t);
}

/** One child process per variant, at most `workers` at a time; their lines are prefixed with the variant. */
async function runInWorkers(configFile: string, runs: readonly ResolvedRun[], workers: number, options: RunConfigOptions, log: (l: string) => void): Promise<void> {
  const bin = path.join(__dirname, '..', '..', 'bin', 'atflow.js');
  const queue = [...runs];
  const failures: string[] = [];
  const one = async (): Promise<void> => {
    for (let run = queue.shift(); run; run = queue.shift()) {
      const args = [bin, 'run', configFile, '--out', options.outDir, '--only', run.variant!, '--workers', '1', '--quiet'];
      for (const s of options.sets ?? []) args.push('--set', s);
      if (options.backend) args.push('--backend', options.backend);
      if (options.resume) args.push('--resume');
      for (const p of options.plugins ?? []) args.push('--plugin', p);
      for (const sink of options.sinkNames ?? []) args.push('--sink', sink);
      // each concurrent variant process gets its share of the cores for its automatic data-parallel
      // count (wasm); a share, not ATFLOW_WORKERS, which tensorflow refuses above 1
      const share = String(coresPerProcess(Math.min(workers, runs.length)));
      const env = { ...process.env, ATFLOW_PROGRESS_LINES: options.quiet ? '0' : '1', ATFLOW_CORES: process.env.ATFLOW_CORES ?? share };
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
        const prefix = (chunk: Buffer) => {
          for (const line of chunk.toString().split('\n')) if (line.trim() && !options.quiet) log(`[${run!.variant}] ${line}`);
        };
        child.stdout.on('data', prefix);
        child.stderr.on('data', prefix);
        child.on('close', (c) => resolve(c ?? 1));
      });
      if (code !== 0) failures.push(`${run.variant} (exit ${code})`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, runs.length) }, one));
  if (failures.length) throw new AtflowError('ARGUMENT', `runs failed: ${failures.join(', ')}`);
}
