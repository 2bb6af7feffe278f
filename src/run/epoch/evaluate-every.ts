import { from, type OperatorFunction, concatMap } from 'rxjs';
import type { BatchPlan } from '../../core/batch';
import type { ExampleColumns } from '../../core/records';
import { deriveSeed, Rng } from '../../core/rng';
import { loadBatches } from '../../operators/load-batches';
import { randomizeLabels } from '../../operators/randomize-labels';
import type { EvalSummary } from '../../evaluation/evaluate';
import type { RunParts } from '../../config/build-run';
import type { RunSpec } from '../../config/spec';
import type { EpochEvaluation, EvaluatedEpoch, RunContext, TrainedEpoch } from './run-context';

/** Eval-mode pass over the training set (in index order, or a fixed seeded subset): the 'eval' phase. */
export function trainEvalPlans(spec: RunSpec, parts: RunParts, epoch: number): Iterable<BatchPlan> {
  const n = parts.planner.size('train');
  const bs = spec.data.testBatchSize;
  if (spec.eval.trainSubset === undefined || spec.eval.trainSubset >= n)
    return parts.planner.iterate('train', epoch, { shuffle: false, batchSize: bs });
  const indices = new Rng(deriveSeed(spec.seed, 'train-eval-subset')).permutation(n).slice(0, spec.eval.trainSubset).sort();
  const plans: BatchPlan[] = [];
  for (let step = 0; step * bs < indices.length; step++)
    plans.push({ split: 'train', epoch, step, indices: indices.slice(step * bs, (step + 1) * bs) });
  return plans;
}

/**
 * Every `every` epochs and at the last (`spec.eval.every`, `spec.epochs`): the run's evaluator over the
 * test split, the validation split (when the source has one) and, with `eval.train`, the training set
 * against its used labels. Every evaluated split's rows are logged (eval phase, with their split); the
 * training set's also drive the eval-phase events and the margins of the complexity measures.
 */
export function evaluateEvery(
  run: RunContext,
  every = run.spec.eval.every,
  last = run.spec.epochs,
): OperatorFunction<TrainedEpoch, EvaluatedEpoch> {
  const { spec, parts } = run;
  const { planner, source, labels } = parts;
  // one split's pass: its summary and, for the training set, its rows (the complexity measures' margins)
  const pass = async (
    plans: Iterable<BatchPlan>,
    split: 'train' | 'val' | 'test',
    epoch: number,
  ): Promise<{ summary: EvalSummary; cols: ExampleColumns[] }> => {
    const cols: ExampleColumns[] = [];
    const summary = await run.evaluator.pass(from(plans).pipe(loadBatches(source), randomizeLabels(labels)), epoch, (c) => {
      if (split === 'train' || spec.logging.examples) cols.push({ ...c, split });
    });
    for (const c0 of cols) {
      const c = run.markCorrupted(c0);
      if (spec.logging.examples) await run.emit({ type: 'examples', columns: c });
      if (split !== 'train') continue;
      const evalEvents = run.detectors.eval.observe(c);
      if (evalEvents.example.length) await run.emit({ type: 'events', columns: evalEvents });
    }
    return { summary, cols: split === 'train' ? cols : [] };
  };
  return concatMap(async (s): Promise<EvaluatedEpoch> => {
    const epoch = s.epoch;
    const t0 = Date.now();
    if (epoch % every !== 0 && epoch !== last)
      return { ...s, stage: 'evaluated', evaluation: { test: null, val: null, train: null, trainColumns: [], ms: Date.now() - t0 } };
    const test = await pass(planner.iterate('test', epoch), 'test', epoch);
    const val = source.splits.includes('val') ? await pass(planner.iterate('val', epoch), 'val', epoch) : null;
    const train = spec.eval.train ? await pass(trainEvalPlans(spec, parts, epoch), 'train', epoch) : null;
    const evaluation: EpochEvaluation = {
      test: test.summary,
      val: val?.summary ?? null,
      train: train?.summary ?? null,
      trainColumns: train?.cols ?? [],
      ms: Date.now() - t0,
    };
    return { ...s, stage: 'evaluated', evaluation };
  });
}
