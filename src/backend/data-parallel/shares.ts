import { AtflowError } from '../../core/errors';
import { deriveSeed } from '../../core/rng';

/** Rows [start, end) of a batch that one worker handles. */
export interface Share {
  readonly start: number;
  readonly end: number;
}

/**
 * Contiguous shares of a batch of `batchSize` rows over `workers` workers, as equal as possible
 * (the first `batchSize % workers` shares get one row more). A worker gets an empty share when the
 * batch is smaller than the pool; empty shares are dropped, so fewer shares than workers may come back.
 */
export function splitShares(batchSize: number, workers: number): Share[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new AtflowError('ARGUMENT', `data-parallel: batch size must be an integer ≥ 1, got ${batchSize}`);
  if (!Number.isInteger(workers) || workers < 1) throw new AtflowError('ARGUMENT', `data-parallel: workers must be an integer ≥ 1, got ${workers}`);
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

/**
 * The attack seed of one share. The attacks draw their random start for the whole tensor they get
 * from one Rng stream, so the noise of a row depends on where the row sits in that tensor: a share
 * cannot reproduce the single-thread rows. A share that is the whole batch keeps the batch seed (one
 * worker = the single-thread path, bit for bit); any other share draws from
 * deriveSeed(batchSeed, 'data-parallel-share', start, end). Runs are then deterministic for a given
 * worker count. Between worker counts two things differ: these random starts, and, for models with
 * BatchNorm, the train-mode normalisation, which uses each share's own batch statistics (PyTorch DDP
 * without SyncBatchNorm), so gradients and the activations after the first BatchNorm differ. The BN
 * running statistics are merged exactly over the batch (train-step-parallel.ts).
 */
export function shareSeed(batchSeed: number, share: Share, batchSize: number): number {
  if (share.start === 0 && share.end === batchSize) return batchSeed;
  return deriveSeed(batchSeed, 'data-parallel-share', share.start, share.end);
}
