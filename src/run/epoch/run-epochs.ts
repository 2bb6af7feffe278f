import { EMPTY, expand, of, type Observable, type OperatorFunction } from 'rxjs';
import type { EndedEpoch, NewEpoch } from './run-context';

/** Where the stream starts: the epochs `from` … `to`, and the history and best weights before `from`. */
export type EpochRange = Pick<NewEpoch, 'history' | 'best'> & { readonly from: number; readonly to: number };

/**
 * The run as a stream of epochs `from` … `to`, each passed through `epoch` (the epoch operators piped
 * together, NewEpoch → EndedEpoch) before the next one starts: epoch k + 1 is created, with epoch k's
 * history and best weights, only when epoch k has come out of the last operator, so no two epochs
 * ever interleave (an epoch's evaluation sees its own weights). The stream ends after the last epoch,
 * after an epoch that an operator marked `stop` (stopWhen), or when an epoch comes out of `epoch` with
 * nothing (trainEpoch interrupted mid-epoch). None when from > to (a resumed run whose last checkpoint
 * was its last epoch).
 */
export function runEpochs(o: EpochRange, epoch: OperatorFunction<NewEpoch, EndedEpoch>): Observable<EndedEpoch> {
  if (o.from > o.to) return EMPTY;
  const one = (n: number, before: Pick<NewEpoch, 'history' | 'best'>) =>
    of<NewEpoch>({ stage: 'new', epoch: n, history: before.history, best: before.best }).pipe(epoch);
  return one(o.from, o).pipe(expand((s) => (s.stop || s.epoch >= o.to ? EMPTY : one(s.epoch + 1, s)), 1));
}
