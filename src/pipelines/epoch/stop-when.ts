import { map, type MonoTypeOperatorFunction } from 'rxjs';
import type { EpochState } from './run-context';

/**
 * Ends the run after the epoch for which `stop` returns true: that epoch passes on, marked `stop`, with
 * everything the operators before this one did to it (its record, its checkpoint); runEpochs starts no
 * further epoch. An early-stopping rule is one of these; so is SIGINT (the runner's shouldStop).
 */
export function stopWhen(stop: (s: EpochState) => boolean): MonoTypeOperatorFunction<EpochState> {
  return map((s) => (s.stop || stop(s) ? { ...s, stop: true } : s));
}
