import { ParquetRunWriter } from './parquet-sink';
import { ArrowRunWriter } from './arrow-sink';
import { ProgressDisplay } from './progress';
import { SummaryWriter } from './summary';
import type { RunSink } from '../core/run-sink';
import type { ResolvedRun, RunSpec } from '../config/spec';
import type { Registry } from '../config/registry';

/**
 * The Parquet run-folder writer as an awaited sink. _SUCCESS is written by the runner once every sink
 * is closed (summary.json included); a run that threw before run-end keeps what it wrote (close).
 */
export function parquetRunSink(): RunSink {
  return new ParquetRunWriter({ successMarker: false });
}

/** What a sink factory registered under kind 'sink' is given, per run. */
export interface SinkOptions {
  readonly runDir: string;
  readonly spec: RunSpec;
  /** The CLI's --quiet. */
  readonly quiet: boolean;
}

/**
 * The sinks every CLI run gets, by registry name: 'parquet', 'arrow' (with logging.arrow), 'summary',
 * 'progress', then the config's logging.sinks and the CLI's --sink names. Registering one of these names
 * replaces that sink; registering a new name and listing it adds one.
 */
export function runSinkNames(spec: RunSpec, extra: readonly string[] = []): string[] {
  return ['parquet', ...(spec.logging.arrow ? ['arrow'] : []), 'summary', 'progress', ...(spec.logging.sinks ?? []), ...extra];
}

/** The built-in sinks' factories (registerBuiltins). */
export const BUILTIN_SINKS: Readonly<Record<string, (o: SinkOptions) => RunSink>> = {
  parquet: () => parquetRunSink(),
  arrow: () => new ArrowRunWriter(),
  summary: () => new SummaryWriter(),
  progress: (o) =>
    new ProgressDisplay({
      quiet: o.quiet && process.env.ATFLOW_PROGRESS_LINES !== '1',
      tty: process.env.ATFLOW_PROGRESS_LINES === '1' ? false : undefined,
    }),
};

/**
 * A run's sinks built by name through the registry: runSinkNames (the built-ins, logging.sinks, then
 * `extra`), each given { runDir, spec, quiet }. What `atflow run` gives every run.
 */
export function sinksByName(
  registry: Registry,
  options: { readonly extra?: readonly string[]; readonly quiet?: boolean } = {},
): (runDir: string, spec: RunSpec) => RunSink[] {
  return (runDir, spec) =>
    runSinkNames(spec, options.extra).map((name) =>
      registry.create<RunSink, SinkOptions>('sink', name, { runDir, spec, quiet: !!options.quiet }),
    );
}

/** Every sink name the runs will build is registered: checked before any run starts, naming the field (logging.sinks or --sink). */
export function checkSinkNames(runs: readonly ResolvedRun[], registry: Registry, extra: readonly string[] = []): void {
  for (const run of runs) {
    for (const name of runSinkNames(run.spec, extra))
      registry.factory('sink', name, (run.spec.logging.sinks ?? []).includes(name) ? 'logging.sinks' : '--sink');
  }
}
