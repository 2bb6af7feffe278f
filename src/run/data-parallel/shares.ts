import { AtflowError } from '../../core/errors';

/** Rows [start, end) of a batch that one worker handles. */
export interface Share {
  readonly start: number;
  readonly end: number;
}

/**
 * Contiguous shares of a batch of `batchSize` rows over `workers` workers, as equal as possible
 * (the first `batchSize % workers` shares get one row more). A worker gets an empty share when the
 * batch is smaller than the pool; empty shares are dropped, so fewer shares than workers may come back.
 *
 * What a split changes: the random starts do not (each row draws its own, keyed by its source index:
 * start-point.ts), and neither do the BatchNorm running statistics (merged exactly over the batch,
 * between-share variance included: train-step-parallel.ts). Only train-mode BatchNorm normalisation
 * does: each share normalises with its own batch statistics (PyTorch DDP without SyncBatchNorm), so
 * for models with BatchNorm the gradients differ between worker counts; without BatchNorm they do not.
 */
export function splitShares(batchSize: number, workers: number): Share[] {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new AtflowError('ARGUMENT', `data-parallel: batch size must be an integer ≥ 1, got ${batchSize}`);
  if (!Number.isInteger(workers) || workers < 1)
    throw new AtflowError('ARGUMENT', `data-parallel: workers must be an integer ≥ 1, got ${workers}`);
  const base = Math.floor(batchSize / workers);
  const extra = batchSize % workers;
  const out: Share[] = [];
  let start = 0;
  for (let k = 0; k < workers; k++) {
    const n = base + (k < extra ? 1 : 0);
    if (n > 0) out.push({ start, end: start + n });
    start += n;
  }
  return out;
}
