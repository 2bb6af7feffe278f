/**
 * A hook on BatchNorm's train-mode forwards: each one reports the batch statistics it normalised with
 * (per-channel mean, biased variance, values per channel). Data-parallel workers listen, so the main
 * thread can merge the shares' statistics into the full batch's exactly (train-step-parallel.ts).
 * Nothing listens otherwise, and then BatchNorm does not read the statistics back.
 */
export interface BatchStats {
  /** The BatchNorm layer's name (its buffers are `<layer>.running_mean` / `<layer>.running_var`). */
  readonly layer: string;
  readonly mean: Float32Array;
  readonly biasedVariance: Float32Array;
  /** Values per channel (N·H·W). */
  readonly count: number;
}

let listener: ((s: BatchStats) => void) | null = null;

/** Calls `fn` with `onStats` receiving every train-mode BatchNorm forward's statistics, in order. */
export function recordBatchStats<T>(onStats: (s: BatchStats) => void, fn: () => T): T {
  const previous = listener;
  listener = onStats;
  try {
    return fn();
  } finally {
    listener = previous;
  }
}

/** For BatchNorm layers: whether anyone listens (reading the statistics back costs a sync). */
export function batchStatsListener(): ((s: BatchStats) => void) | null {
  return listener;
}
