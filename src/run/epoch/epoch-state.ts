import type { OperatorFunction } from 'rxjs';
import type { AugmentedBatch, LabeledBatch, TrainedBatch } from '../../core/batch';
import type { EpochRecord, ExampleColumns } from '../../core/records';
import type { EvalSummary } from '../../evaluation/evaluate';
import type { BestWeights } from '../../store/checkpoint-store';

/**
 * The stages an epoch goes through, as batches do (core/batch.ts): each epoch operator takes one stage
 * and returns the next, so `trainEpoch → evaluateEvery → recordEpoch → trackBest → endEpoch` type-checks
 * and a wrong order does not. measureComplexity and checkpointEvery keep their stage; stopWhen and
 * any operator of your own written for a stage S (`MonoTypeOperatorFunction<S>`) fit wherever S flows.
 */
export type EpochStage = 'new' | 'trained' | 'evaluated' | 'recorded' | 'ranked' | 'ended';

/** What every stage carries: the epoch and the run's history so far, which the stream itself holds. */
export interface EpochBase {
  readonly epoch: number;
  /**
   * The records of the run's epochs before this one (restored ones included), in epoch order; endEpoch
   * appends this epoch's, and the next epoch starts from that. Checkpointed, so it survives a resume.
   */
  readonly history: readonly EpochRecord[];
  /** The best epoch so far with its weights (host copy), written with every checkpoint; null before any epoch was evaluated. */
  readonly best: BestWeights | null;
  /** The batch chain this epoch trains with; absent: the run's own (RunContext.training). An ε curriculum sets it. */
  readonly chain?: OperatorFunction<LabeledBatch | AugmentedBatch, TrainedBatch>;
  /** Set by stopWhen: the run ends after this epoch, completed ('early') or to be resumed ('interrupted'). */
  readonly stop?: 'early' | 'interrupted';
}

/** An epoch about to be trained (runEpochs makes one per epoch). */
export interface NewEpoch extends EpochBase {
  readonly stage: 'new';
}

interface Trained extends EpochBase {
  /** Date.now() when the epoch started. */
  readonly startedAt: number;
  readonly lr: number;
  readonly teWeight: number;
  /** The means' sums over the epoch's steps. */
  readonly train: { readonly lossSum: number; readonly gradSum: number; readonly steps: number };
}
/** After trainEpoch: every batch of the epoch trained. */
export interface TrainedEpoch extends Trained {
  readonly stage: 'trained';
}

/** What an epoch evaluation produced (evaluateEvery); every split null on an epoch not evaluated. */
export interface EpochEvaluation {
  readonly test: EvalSummary | null;
  readonly val: EvalSummary | null;
  readonly train: EvalSummary | null;
  /** The eval-mode rows of the training set (the complexity measures' margins). */
  readonly trainColumns: readonly ExampleColumns[];
  readonly ms: number;
}

interface Evaluated extends Trained {
  readonly evaluation: EpochEvaluation;
}
/** After evaluateEvery. */
export interface EvaluatedEpoch extends Evaluated {
  readonly stage: 'evaluated';
}

interface Recorded extends Evaluated {
  /** The epoch's row of epochs.parquet (recordEpoch); trackBest fills its best_epoch. */
  readonly record: EpochRecord;
}
/** After recordEpoch: the record, `best_epoch` still 0. */
export interface RecordedEpoch extends Recorded {
  readonly stage: 'recorded';
}
/** After trackBest: `record.best_epoch` is decided (this epoch is the new best when it equals `epoch`). */
export interface RankedEpoch extends Recorded {
  readonly stage: 'ranked';
}
/** After endEpoch: epoch-end emitted, the record in `history`, the best weights kept. */
export interface EndedEpoch extends Recorded {
  readonly stage: 'ended';
  /** The checkpoint folder this epoch was saved to (checkpointEvery), absent when it was not. */
  readonly checkpoint?: string;
}

/** An epoch at any stage. */
export type EpochState = NewEpoch | TrainedEpoch | EvaluatedEpoch | RecordedEpoch | RankedEpoch | EndedEpoch;
