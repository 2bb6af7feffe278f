import { EMPTY, expand, of, type Observable, type OperatorFunction } from 'rxjs';
import type { EpochState } from './run-context';

/**
 * The run as a stream of epochs `from` … `to`, each passed through `epoch` (the epoch operators piped
 * together) before the next one starts: epoch k + 1 is created only when epoch k has come out of the
 * last operator, so no two epochs ever interleave (an epoch's evaluation sees its own weights).
 * The stream ends after the last epoch, after an epoch that an operator marked `stop` (stopWhen), or
 * when an epoch comes out of `epoch` with nothing (trainEpoch interrupted mid-epoch). None when
 * from > to (a resumed run whose last checkpoint was its last epoch).
 */
export function runEpochs(o: { readonly from: number; readonly to: number }, epoch: OperatorFunction<EpochState, EpochState>): Observable<EpochState> {
  if (o.from > o.to) return EMPTY;
  const one = (n: number) => of<EpochState>({ epoch: n }).pipe(epoch);
  return one(o.from).pipe(expand((s) => (s.stop || s.epoch >= o.to ? EMPTY : one(s.epoch + 1)), 1));
}
