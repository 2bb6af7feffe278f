import { map, type MonoTypeOperatorFunction } from 'rxjs';
import type { EpochState } from './run-context';

/**
 * Ends the run after the epoch for which `stop` returns true: that epoch passes on, marked, with
 * everything the operators before this one did to it (its record, its checkpoint); runEpochs starts no
 * further epoch, and the run saves the epoch's checkpoint if no checkpointEvery did. 'early' (an
 * early-stopping rule) completes the run: final evaluation, _SUCCESS. 'interrupted' (SIGINT: the
 * runner's shouldStop) leaves it to be resumed, unless it was the last epoch. Fits at any stage.
 */
export function stopWhen<S extends EpochState>(
  stop: (s: S) => boolean,
  as: 'early' | 'interrupted' = 'early',
): MonoTypeOperatorFunction<S> {
  return map((s) => (s.stop || !stop(s) ? s : { ...s, stop: as }));
}
