import type { OperatorFunction } from 'rxjs';
import type { AugmentedBatch, LabeledBatch, TrainedBatch } from '../../core/batch';
import type { EpochRecord, ExampleColumns } from '../../core/records';
import type { RunEvent } from '../../core/run-event';
import type { EventDetector } from '../../operators/detect-events';
import type { EvalSummary } from '../../evaluation/evaluate';
import type { RunTraining } from '../data-parallel/run-training';
import type { RunParts } from '../../config/build-run';
import type { CheckpointStore } from '../../store/checkpoint-store';
import type { RunSpec } from '../../config/spec';
import type { Evaluator } from '../../evaluation/evaluator';

/**
 * Where a run (re)starts: built fresh, or restored from a checkpoint (restoreRunState). The epoch
 * stream starts from it; resume is the same stream started from a checkpoint's state.
 */
export interface RunState {
  /** The first epoch to train: 1, or the epoch after the checkpoint. */
  readonly firstEpoch: number;
  /** The records of the epochs already done (restored ones); the stream appends one per epoch. */
  readonly epochs: EpochRecord[];
  /** Event detectors: 'train' over the updates' rows, 'eval' over the eval-mode pass over the training set. */
  readonly detectors: { readonly train: EventDetector; readonly eval: EventDetector };
  /** Wall time of the sessions before this one. */
  readonly priorWallMs: number;
  /** The data-parallel worker count the checkpoint was trained with (undefined for a fresh run). */
  readonly checkpointWorkers?: number;
}

/** What the epoch operators of one run share. */
export interface RunContext extends RunState {
  readonly runId: string;
  readonly runDir: string;
  readonly spec: RunSpec;
  readonly parts: RunParts;
  /** The batch chain attack → train (single thread or data-parallel). */
  readonly training: RunTraining;
  readonly store: CheckpointStore;
  /** The per-epoch evaluation, resolved by name through the registry's 'evaluator' kind. */
  readonly evaluator: Evaluator;
  /**
   * Delivers an event to every sink, then to the observers of the event stream. Every operator awaits
   * it, so nothing new is computed until the writers have taken the last event (back-pressure).
   */
  readonly emit: (ev: RunEvent) => Promise<void>;
  /** Checked between batches and after each epoch: true stops the run cleanly. */
  readonly shouldStop: () => boolean;
  /** Marks the training-split rows whose inputs were corrupted (identity without input corruption). */
  readonly markCorrupted: (c: ExampleColumns) => ExampleColumns;
  /** Date.now() when this session started. */
  readonly startWall: number;
}

/** What an epoch evaluation produced (evaluateEvery). */
export interface EpochEvaluation {
  readonly test: EvalSummary | null;
  readonly val: EvalSummary | null;
  readonly train: EvalSummary | null;
  /** The eval-mode rows of the training set (the complexity measures' margins). */
  readonly trainColumns: readonly ExampleColumns[];
  readonly ms: number;
}

/** One epoch as it flows through the epoch operators; each adds its part. */
export interface EpochState {
  readonly epoch: number;
  /** The batch chain this epoch trains with; absent: the run's own (RunContext.training). An ε curriculum sets it. */
  readonly chain?: OperatorFunction<LabeledBatch | AugmentedBatch, TrainedBatch>;
  /** Date.now() when the epoch started. */
  readonly startedAt?: number;
  readonly lr?: number;
  readonly teWeight?: number;
  /** trainEpoch: the means' sums over the epoch's steps. */
  readonly train?: { readonly lossSum: number; readonly gradSum: number; readonly steps: number };
  readonly evaluation?: EpochEvaluation;
  /** recordEpoch, then trackBest (best_epoch). */
  readonly record?: EpochRecord;
  /** Set by stopWhen: the run ends after this epoch, completed ('early') or to be resumed ('interrupted'). */
  readonly stop?: 'early' | 'interrupted';
}

/** Wall time of the whole run so far (all sessions). */
export function runWallMs(run: RunContext): number {
  return run.priorWallMs + (Date.now() - run.startWall);
}

/** The part of an epoch a later operator needs, or a clear error naming the operator that provides it. */
export function epochPart<K extends keyof EpochState>(s: EpochState, key: K, provider: string, user: string): NonNullable<EpochState[K]> {
  const v = s[key];
  if (v === undefined || v === null) throw new Error(`${user}: epoch ${s.epoch} has no '${String(key)}'; put ${provider} before it in the stream`);
  return v as NonNullable<EpochState[K]>;
}
