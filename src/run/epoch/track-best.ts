import { map, type MonoTypeOperatorFunction } from 'rxjs';
import type { EpochRecord } from '../../core/records';
import { selectBestEpoch, type EpochScore } from '../../analysis/best-epoch';
import { epochPart, type EpochState, type RunContext } from './run-context';

type Scored = EpochRecord & { val_clean_acc?: number; val_robust_acc?: number };

/** The accuracy the best epoch is picked on: validation when asked for and evaluated, else test. */
function score(e: Scored, selectOn: 'test' | 'val'): EpochScore {
  const useVal = selectOn === 'val';
  return {
    epoch: e.epoch,
    robustAcc: useVal && Number.isFinite(e.val_robust_acc) ? e.val_robust_acc! : e.test_robust_acc,
    cleanAcc: useVal && Number.isFinite(e.val_clean_acc) ? e.val_clean_acc! : e.test_clean_acc,
  };
}

/**
 * The best epoch so far (selectBestEpoch over every evaluated epoch, on `selectOn`) into the record's
 * `best_epoch`; the record joins the run's history, and when this epoch is the best the checkpoint store
 * holds its weights, to be saved with the next checkpoint (store/checkpoint-store.ts).
 */
export function trackBest(run: RunContext, selectOn: 'test' | 'val' = run.spec.eval.selectOn): MonoTypeOperatorFunction<EpochState> {
  return map((s) => {
    const record = epochPart(s, 'record', 'recordEpoch', 'trackBest');
    const evaluated = epochPart(s, 'evaluation', 'evaluateEvery', 'trackBest').test !== null;
    const scores = run.epochs.filter((e) => Number.isFinite(e.test_robust_acc)).map((e) => score(e, selectOn));
    if (evaluated) scores.push(score(record, selectOn));
    const best = scores.length ? selectBestEpoch(scores).best.epoch : 0;
    const withBest = { ...record, best_epoch: best };
    run.epochs.push(withBest);
    if (best === s.epoch) run.store.holdBest(run.parts.model, s.epoch);
    return { ...s, record: withBest };
  });
}
