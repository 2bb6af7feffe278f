import { map, type OperatorFunction } from 'rxjs';
import { bestEpochOf, type SelectOn } from '../../analysis/best-epoch';
import type { RankedEpoch, RecordedEpoch, RunContext } from './run-context';

/**
 * Decides the best epoch so far: the one best-epoch rule (analysis/best-epoch.ts) over the run's
 * history and this epoch, on `selectOn`, into the record's `best_epoch`. Only decides: endEpoch keeps
 * the new best's weights and the next checkpoint writes them, with the records that name their epoch.
 */
export function trackBest(run: RunContext, selectOn: SelectOn = run.spec.eval.selectOn): OperatorFunction<RecordedEpoch, RankedEpoch> {
  return map((s) => ({ ...s, stage: 'ranked', record: { ...s.record, best_epoch: bestEpochOf([...s.history, s.record], selectOn) } }));
}
