import { map, type OperatorFunction } from 'rxjs';
import type { LrSchedule } from './lr-schedule';
import { teWeight, type TeRampSpec } from './te-weight';

export interface EpochSettings {
  readonly epoch: number;
  readonly lr: number;
  /** TE weight w(t); 0 without TE. */
  readonly teWeight: number;
}

/** Maps a stream of 1-based epoch numbers to the settings each epoch trains with (lr, TE weight). */
export function epochSettings(lr: LrSchedule, te?: TeRampSpec): OperatorFunction<number, EpochSettings> {
  return map((epoch) => ({ epoch, lr: lr(epoch), teWeight: te ? teWeight(epoch, te) : 0 }));
}
