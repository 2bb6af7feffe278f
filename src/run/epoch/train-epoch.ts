import { concatMap, filter, from, lastValueFrom, takeWhile, type OperatorFunction } from 'rxjs';
import { loadBatches, onePlanAtATime } from '../../operators/load-batches';
import { randomizeLabels } from '../../operators/randomize-labels';
import { augment } from '../../operators/augment';
import type { NewEpoch, RunContext, TrainedEpoch } from './run-context';

/**
 * One epoch of training: plans → load → randomizeLabels → augment → the epoch's chain (attack → train)
 * per batch, emitting epoch-start, then per batch its step, its examples rows and its train-phase
 * events. One batch of tensors is alive at a time: plan k+1 is loaded only after batch k's rows were
 * taken by the sinks. When `shouldStop` turns true between batches the epoch is left unfinished and
 * passes nothing on: runEpochs ends the run there (interrupted; its last checkpoint stays the resume point).
 */
export function trainEpoch(run: RunContext): OperatorFunction<NewEpoch, TrainedEpoch> {
  const { parts, spec } = run;
  const { planner, source, labels } = parts;
  return (epochs$) =>
    epochs$.pipe(
      concatMap(async (s): Promise<TrainedEpoch | null> => {
        const startedAt = Date.now();
        const epoch = s.epoch;
        const lr = parts.lr(epoch);
        const teWeight = parts.te ? parts.te.weight(epoch) : 0;
        await run.emit({ type: 'epoch-start', epoch, lr, teWeight, steps: planner.steps('train') });
        const sums = { lossSum: 0, gradSum: 0, steps: 0 };
        let seen = 0;
        await lastValueFrom(
          from(planner.iterate('train', epoch)).pipe(
            onePlanAtATime((plan$) =>
              plan$.pipe(
                // checked when the plan's turn comes (not when `from` emits it): stops at a batch boundary
                takeWhile(() => !run.shouldStop()),
                loadBatches(source),
                randomizeLabels(labels),
                augment(parts.augment),
                s.chain ?? run.training.operator,
                concatMap(async (tb) => {
                  sums.lossSum += tb.record.loss;
                  sums.gradSum += tb.record.grad_norm_sq;
                  sums.steps++;
                  seen += tb.indices.length;
                  await run.emit({ type: 'step', record: tb.record });
                  if (spec.logging.examples) await run.emit({ type: 'examples', columns: run.markCorrupted(tb.columns) });
                  const trainEvents = run.detectors.train.observe(tb.columns);
                  if (trainEvents.example.length) await run.emit({ type: 'events', columns: trainEvents });
                  // a macrotask turn between batches, so SIGINT is seen at the next batch boundary
                  await new Promise((r) => setImmediate(r));
                }),
              ),
            ),
          ),
          { defaultValue: undefined },
        );
        return seen < planner.size('train') ? null : { ...s, stage: 'trained', startedAt, lr, teWeight, train: sums };
      }),
      filter((s): s is TrainedEpoch => s !== null),
    );
}
