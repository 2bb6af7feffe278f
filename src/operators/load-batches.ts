import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { BatchPlan, LoadedBatch } from '../core/batch';
import type { Source } from '../sources/source';

/**
 * Plans → batches with tensors. The tensor is created inside concatMap, when the plan's turn comes,
 * not when the plan is emitted: RxJS has no backpressure, so upstream may race ahead, but only plans
 * (indices) queue up; at most one loaded batch per plan in flight. The emitted batch owns its x; the
 * last consumer disposes it (disposeBatch).
 */
export function loadBatches(source: Pick<Source, 'load'>): OperatorFunction<BatchPlan, LoadedBatch> {
  return concatMap((plan) => defer(() => of(source.load(plan))));
}
