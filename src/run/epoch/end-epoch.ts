import { concatMap, type OperatorFunction } from 'rxjs';
import { weightsSnapshot } from '../../models/checkpoint';
import type { EndedEpoch, RankedEpoch, RunContext } from './run-context';

/**
 * Ends the epoch: emits its record (epoch-end: the sinks close the epoch's files, making its rows
 * durable before the checkpoint), appends the record to the stream's history and, when this epoch is
 * the new best, keeps a host copy of its weights until the next checkpoint writes them with it.
 */
export function endEpoch(run: RunContext): OperatorFunction<RankedEpoch, EndedEpoch> {
  return concatMap(async (s): Promise<EndedEpoch> => {
    await run.emit({ type: 'epoch-end', record: s.record });
    const isBest = s.record.best_epoch === s.epoch;
    const best = isBest ? { epoch: s.epoch, weights: weightsSnapshot(run.parts.model, { epoch: String(s.epoch) }) } : s.best;
    return { ...s, stage: 'ended', history: [...s.history, s.record], best };
  });
}
