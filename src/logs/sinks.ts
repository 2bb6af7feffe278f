import { ParquetRunWriter } from './parquet-sink';
import { ArrowRunWriter } from './arrow-sink';
import { ProgressDisplay } from './progress';
import { SummaryWriter } from './summary';
import type { RunSink } from '../core/run-sink';
import type { RunSpec } from '../config/spec';

/** The Parquet run-folder writer as an awaited sink. */
export function parquetRunSink(): RunSink {
  // _SUCCESS is written by the runner once every sink is closed (summary.json included)
  const writer = new ParquetRunWriter({ successMarker: false });
  let ended = false;
  return {
    name: 'parquet',
    async handle(ev) {
      if (ev.type === 'run-end') ended = true;
      await writer.handle(ev);
    },
    async close() {
      // a run that threw before run-end keeps what it wrote, without _SUCCESS
      if (!ended) await writer.closeAll();
    },
  };
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
  progress: (o) => new ProgressDisplay({ quiet: o.quiet && process.env.ATFLOW_PROGRESS_LINES !== '1', tty: process.env.ATFLOW_PROGRESS_LINES === '1' ? false : undefined }),
};
