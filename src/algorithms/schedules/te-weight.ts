import { AtflowError } from '../../core/errors';

export interface TeRampSpec {
  /** Maximum weight (docs/algorithms.md §5.3 `--reg-weight`, 300). */
  readonly weight: number;
  /** First epoch (1-based) of the EMA and the penalty (`--start-es`, 90). */
  readonly start: number;
  /** Epoch at which the ramp reaches `weight` (`--end-es`, 150). */
  readonly end: number;
}

/**
 * TE weight w(t) for the 1-based epoch t, the "sigmoid rampup" of Laine & Aila as in the authors'
 * code (docs/algorithms.md §5.3): 0 before start, weight·exp(−5(1 − (t − start)/(end − start))²) for
 * start ≤ t ≤ end, weight after. Evaluated once per epoch, before training.
 */
export function teWeight(epoch: number, spec: TeRampSpec): number {
  validateTeRamp(spec);
  if (epoch < spec.start) return 0;
  if (epoch > spec.end) return spec.weight;
  if (spec.end === spec.start) return spec.weight;
  const phase = 1 - (epoch - spec.start) / (spec.end - spec.start);
  return spec.weight * Math.exp(-5 * phase * phase);
}

export function validateTeRamp(spec: TeRampSpec): void {
  if (!Number.isFinite(spec.weight) || spec.weight < 0)
    throw new AtflowError('CONFIG', `te.weight must be a finite number ≥ 0, got ${spec.weight}`);
  if (!Number.isInteger(spec.start) || spec.start < 1)
    throw new AtflowError('CONFIG', `te.start must be an integer epoch ≥ 1, got ${spec.start}`);
  if (!Number.isInteger(spec.end) || spec.end < spec.start) {
    throw new AtflowError('CONFIG', `te.end must be an integer epoch ≥ te.start (${spec.start}), got ${spec.end}`);
  }
}
