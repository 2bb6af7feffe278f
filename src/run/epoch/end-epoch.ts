import { concatMap, type MonoTypeOperatorFunction } from 'rxjs';
import { epochPart, type EpochState, type RunContext } from './run-context';

/** Emits the epoch's record (epoch-end): the sinks close the epoch's files, making its rows durable before the checkpoint. */
export function endEpoch(run: RunContext): MonoTypeOperatorFunction<EpochState> {
  return concatMap(async (s) => {
    await run.emit({ type: 'epoch-end', record: epochPart(s, 'record', 'recordEpoch', 'endEpoch') });
    return s;
  });
}
