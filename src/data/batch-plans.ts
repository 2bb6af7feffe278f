import { defer, from, type Observable } from 'rxjs';
import type { BatchPlan, DatasetInfo, Split } from '../core/batch';
import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import type { NamedPart } from '../core/named-part';

/**
 * Lazy batch plans (indices only, no tensors) for one pass over a split. The training split is
 * shuffled per epoch by Rng(deriveSeed(seed, 'shuffle', epoch)) — a pure function of (run seed, epoch),
 * so a resumed run sees the same order; evaluation splits keep file order. The last partial batch is
 * kept (PyTorch's drop_last=False).
 */
export interface BatchPlanOptions {
  /** Training batch size (authors: 128). */
  readonly batchSize: number;
  /** Batch size of the test / val splits (authors' train_te.py: 200). Default: batchSize. */
  readonly evalBatchSize?: number;
  /** The run seed. */
  readonly seed: number;
  /** Whether to shuffle the training split. Default true. Test and val are never shuffled. */
  readonly shuffleTrain?: boolean;
}

/** Per-pass overrides of the split's defaults. */
export interface PassOptions {
  readonly shuffle?: boolean;
  readonly batchSize?: number;
  /** First step to emit (resume mid-epoch). */
  readonly fromStep?: number;
}

export function stepsPerEpoch(size: number, batchSize: number): number {
  return Math.ceil(size / batchSize);
}

/** The order of a split's examples in one epoch. */
export function epochOrder(size: number, epoch: number, seed: number, shuffle: boolean): Int32Array {
  if (shuffle) return new Rng(deriveSeed(seed, 'shuffle', epoch)).permutation(size);
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  return order;
}

function checkBatchSize(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new AtflowError('CONFIG', `${field} = ${v}: expected an integer >= 1`, { field, value: v });
  return v;
}

export class BatchPlanner {
  private readonly sizes: Readonly<Partial<Record<Split, number>>>;
  private readonly options: Required<BatchPlanOptions>;

  /** `sizes`: the split sizes, e.g. `source.info.sizes`. */
  constructor(sizes: DatasetInfo['sizes'], options: BatchPlanOptions) {
    this.sizes = sizes;
    this.options = {
      batchSize: checkBatchSize('batchSize', options.batchSize),
      evalBatchSize: checkBatchSize('evalBatchSize', options.evalBatchSize ?? options.batchSize),
      seed: options.seed,
      shuffleTrain: options.shuffleTrain ?? true,
    };
  }

  size(split: Split): number {
    const n = this.sizes[split];
    if (n === undefined) {
      throw new AtflowError('ARGUMENT', `no '${split}' split to plan batches for; splits: ${Object.keys(this.sizes).join(', ')}`, {
        split,
      });
    }
    return n;
  }

  batchSize(split: Split): number {
    return split === 'train' ? this.options.batchSize : this.options.evalBatchSize;
  }

  steps(split: Split): number {
    return stepsPerEpoch(this.size(split), this.batchSize(split));
  }

  /**
   * Plans of one pass, generated one at a time. Defaults: the training split shuffled with the training
   * batch size; test / val in file order with the eval batch size. `pass` overrides them, e.g. an
   * evaluation pass over the training set: `{ shuffle: false, batchSize: 200 }`; `fromStep` skips the
   * first steps (resume mid-epoch).
   */
  *iterate(split: Split, epoch: number, pass: PassOptions = {}): Generator<BatchPlan> {
    const size = this.size(split);
    const bs = pass.batchSize === undefined ? this.batchSize(split) : checkBatchSize('batchSize', pass.batchSize);
    const shuffle = pass.shuffle ?? (split === 'train' && this.options.shuffleTrain);
    const order = epochOrder(size, epoch, this.options.seed, shuffle);
    for (let step = pass.fromStep ?? 0; step * bs < size; step++) {
      yield { split, epoch, step, indices: order.slice(step * bs, Math.min(size, (step + 1) * bs)) };
    }
  }

  /** All plans of one pass (cheap: indices only). */
  planEpoch(split: Split, epoch: number, pass: PassOptions = {}): BatchPlan[] {
    return [...this.iterate(split, epoch, pass)];
  }

  /**
   * The plans as an Observable; each subscription starts a fresh generator. When a downstream stage is
   * asynchronous, concatMap queues these plans (a few bytes each), never tensors: those are born by
   * loadBatches only when a plan's turn comes.
   */
  plans$(split: Split, epoch: number, pass: PassOptions = {}): Observable<BatchPlan> {
    return defer(() => from(this.iterate(split, epoch, pass)));
  }
}

/** What the registry's 'planner' factories get: the split sizes and the data section's batch sizes. */
export interface PlannerOptions extends BatchPlanOptions {
  readonly sizes: DatasetInfo['sizes'];
}

/** BatchPlanner as the registry's 'epoch-shuffle' (kind 'planner', config `data.planner`): another is a class with its methods. */
export const epochShufflePlannerEntry: NamedPart<BatchPlanner, PlannerOptions> = {
  name: 'epoch-shuffle',
  create: ({ sizes, ...options }) => new BatchPlanner(sizes, options),
};
