import { firstValueFrom, from } from 'rxjs';
import type { RunEvent } from '../../src/core/run-event';
import { parquetSink, type ParquetSinkResult } from '../../src/logs/parquet-sink';

export function writeRun(events: RunEvent[], now = () => Date.parse('2024-05-06T07:10:00.000Z')): Promise<ParquetSinkResult> {
  return firstValueFrom(from(events).pipe(parquetSink({ now })));
}
