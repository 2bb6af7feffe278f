import { ParquetRunWriter } from '../sinks/parquet-sink';
import type { RunSink } from './run-sinks';

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
