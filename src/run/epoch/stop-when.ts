import { map, type MonoTypeOperatorFunction } from 'rxjs';
import type { EpochState } from './run-context';

/**
 * Ends the run after the epoch for which `stop` returns true: that epoch passes on, marked, with
 * everything the operators before this one did to it (its record, its checkpoint); runEpochs starts no
 * further epoch. 'early' (an early-stopping rule) completes the run: final evaluation, _SUCCESS.
 * 'interrupted' (SIGINT: the runner's shouldStop) leaves it to be resumed, unless it was the last epoch.
 */
export function stopWhen(stop: (s: EpochState) => boolean, as: 'early' | 'interrupted' = 'early'): MonoTypeOperatorFunction<EpochState> {
  return map((s) => (s.stop || !stop(s) ? s : { ...s, stop: as }));
}
