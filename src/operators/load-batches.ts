import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { BatchPlan, LoadedBatch } from '../core/batch';
import type { Source } from '../data/source';

/**
 * Plans → batches with tensors. The tensor is created inside concatMap when the plan's turn comes,
 * not when the plan is emitted. The emitted batch owns its x; the last consumer disposes it
 * (disposeBatch).
 *
 * RxJS has no backpressure: if a stage AFTER loadBatches is asynchronous (a Promise, a timer, an
 * awaited data() call), loadBatches itself finishes each plan at once and the async stage's own
 * concatMap queues the loaded batches, tensors and all. Run such stages per plan with
 * `onePlanAtATime(plan$ => plan$.pipe(loadBatches(src), …async stages…))`: then the next plan is
 * loaded only when the previous one has gone through every stage, so one batch of tensors is alive.
 */
export function loadBatches(source: Pick<Source, 'load'>): OperatorFunction<BatchPlan, LoadedBatch> {
  return concatMap((plan) => defer(() => of(source.load(plan))));
}

/**
 * Runs `stages` for one plan at a time: plan k+1 enters only after plan k's stages complete. Only
 * plans (indices) queue up in front of it, never tensors.
 */
export function onePlanAtATime<R>(stages: OperatorFunction<BatchPlan, R>): OperatorFunction<BatchPlan, R> {
  return concatMap((plan) => of(plan).pipe(stages));
}
