import * as tf from '@tensorflow/tfjs';
import { lastValueFrom, map, reduce, type Observable, type OperatorFunction } from 'rxjs';
import { disposeBatch, type LabeledBatch, type LoadedBatch, type Split } from '../core/batch';
import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import type { ExampleColumns } from '../core/records';
import { deriveSeed } from '../core/rng';
import { pgd } from '../algorithms/attacks/pgd';
import { exampleColumns, logitStats } from '../algorithms/trainers/logit-stats';
import type { ThreatModel } from './threat-model';

export interface EvaluateOptions {
  readonly model: Model;
  /**
   * The threat model PGD attacks in (threatModel; DEFAULT_EVAL_ATTACK is the authors'); null evaluates clean only (the adversarial columns
   * repeat the clean ones).
   */
  readonly attack: ThreatModel | null;
  /** Run seed: a batch's attack seed is deriveSeed(seed, 'eval-attack', split, epoch, step). */
  readonly seed: number;
  /** The epoch the records are written under (default: the batch's own). */
  readonly epoch?: number;
}

/** One evaluated batch: eval-phase per-example columns, no tensors. */
export interface EvaluatedBatch {
  readonly stage: 'evaluated';
  readonly split: Split;
  readonly epoch: number;
  readonly step: number;
  readonly columns: ExampleColumns;
}

const SPLIT_CODE: Record<Split, number> = { train: 0, test: 1, val: 2 };

/**
 * Clean and PGD evaluation in eval mode, as an operator over loaded (test) or labelled (train, against
 * the labels it is trained on) batches: → EvaluatedBatch with phase-'eval' columns. `evaluate` is the
 * last consumer of each batch's x and disposes it. TE columns are NaN (null) in the eval phase.
 */
export function evaluate(options: EvaluateOptions): OperatorFunction<LoadedBatch | LabeledBatch, EvaluatedBatch> {
  const { model } = options;
  const settings = options.attack;
  return map((batch) => {
    const B = batch.indices.length;
    const K = model.numClasses;
    let y: tf.Tensor1D | undefined;
    let xAdv: tf.Tensor4D | undefined;
    try {
      y = tf.tensor1d(batch.labelsUsed, 'int32');
      let clean: Float32Array;
      let adv: Float32Array;
      if (settings) {
        xAdv = pgd(model, batch.x, y, deriveSeed(options.seed, 'eval-attack', SPLIT_CODE[batch.split], batch.epoch, batch.step), {
          ...settings,
          rowKeys: batch.indices,
        });
        // the clean and the adversarial rows in one eval-mode forward pass (one dispatch of the
        // network's ops and one read-back instead of two; eval mode treats rows independently)
        const both = tf.tidy(() => model.apply(tf.concat([batch.x, xAdv!], 0), 'eval'));
        const values = both.dataSync() as Float32Array;
        both.dispose();
        clean = values.subarray(0, B * K);
        adv = values.subarray(B * K);
      } else {
        const cleanLogits = tf.tidy(() => model.apply(batch.x, 'eval'));
        clean = cleanLogits.dataSync() as Float32Array;
        cleanLogits.dispose();
        adv = clean;
      }
      const c = logitStats(clean, batch.labelsUsed, K);
      const a = settings ? logitStats(adv, batch.labelsUsed, K) : c;
      const columns: ExampleColumns = exampleColumns({
        epoch: options.epoch ?? batch.epoch,
        phase: 'eval',
        indices: batch.indices,
        labelsTrue: batch.labelsTrue,
        labelsUsed: batch.labelsUsed,
        clean: c,
        adv: a,
      });
      const out: EvaluatedBatch = { stage: 'evaluated', split: batch.split, epoch: columns.epoch, step: batch.step, columns };
      return out;
    } finally {
      y?.dispose();
      xAdv?.dispose();
      disposeBatch(batch as unknown as { x: tf.Tensor } & Record<string, unknown>);
    }
  });
}

/** Accuracy and mean loss of one pass (clean and robust), against the labels evaluated on. */
export interface EvalSummary {
  readonly split: Split | null;
  readonly epoch: number;
  readonly n: number;
  readonly cleanAcc: number;
  readonly cleanLoss: number;
  readonly robustAcc: number;
  readonly robustLoss: number;
}

/** Reduces a pass of evaluated batches to its summary (NaN for an empty pass). */
export function summarizeEvaluation(): OperatorFunction<EvaluatedBatch, EvalSummary> {
  return (source) =>
    source.pipe(
      reduce(
        (acc, b) => {
          const col = b.columns;
          for (let i = 0; i < col.example.length; i++) {
            acc.cleanCorrect += col.correct_clean[i];
            acc.advCorrect += col.correct_adv[i];
            acc.cleanLoss += col.loss_clean[i];
            acc.advLoss += col.loss_adv[i];
          }
          acc.n += col.example.length;
          acc.split = b.split;
          acc.epoch = b.epoch;
          return acc;
        },
        { n: 0, cleanCorrect: 0, advCorrect: 0, cleanLoss: 0, advLoss: 0, split: null as Split | null, epoch: 0 },
      ),
      map((a) => ({
        split: a.split,
        epoch: a.epoch,
        n: a.n,
        cleanAcc: a.cleanCorrect / a.n,
        cleanLoss: a.cleanLoss / a.n,
        robustAcc: a.advCorrect / a.n,
        robustLoss: a.advLoss / a.n,
      })),
    );
}

/** Evaluates a whole pass and resolves with its summary; `onBatch` sees each batch's columns (e.g. to log them). */
export async function evaluatePass(
  batches: Observable<LoadedBatch | LabeledBatch>,
  options: EvaluateOptions,
  onBatch?: (batch: EvaluatedBatch) => void,
): Promise<EvalSummary> {
  const summary = await lastValueFrom(
    batches.pipe(
      evaluate(options),
      map((b) => {
        onBatch?.(b);
        return b;
      }),
      summarizeEvaluation(),
    ),
    { defaultValue: undefined },
  );
  if (!summary || summary.n === 0) throw new AtflowError('ARGUMENT', 'evaluatePass: the pass had no examples');
  return summary;
}
