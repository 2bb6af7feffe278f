import type { EpochRecord, ExampleColumns } from '../../core/records';
import type { RunEvent } from '../../core/run-event';
import type { EventDetector } from '../../operators/detect-events';
import type { RunTraining } from '../data-parallel/run-training';
import type { RunParts } from '../../config/build-run';
import type { BestWeights, CheckpointStore } from '../../store/checkpoint-store';
import type { RunSpec } from '../../config/spec';
import type { Evaluator } from '../../evaluation/evaluator';

export * from './epoch-state';

/** Event detectors: 'train' over the updates' rows, 'eval' over the eval-mode pass over the training set. */
export interface RunDetectors {
  readonly train: EventDetector;
  readonly eval: EventDetector;
}

/**
 * Where a run (re)starts: fresh, or restored from its folder's last checkpoint (restoreRunState). The
 * epoch stream starts from it; resume is the same stream started from a checkpoint's state.
 */
export interface RunState {
  /** The first epoch to train: 1, or the epoch after the checkpoint. */
  readonly firstEpoch: number;
  /** The records of the epochs already done (restored ones); the first epoch's `history`. */
  readonly history: readonly EpochRecord[];
  /** The best epoch so far and its weights (restored from the checkpoint); null before any evaluation. */
  readonly best: BestWeights | null;
  readonly detectors: RunDetectors;
  /** Wall time of the sessions before this one. */
  readonly priorWallMs: number;
  /** The data-parallel worker count the checkpoint was trained with (undefined for a fresh run). */
  readonly checkpointWorkers?: number;
  /** The backends (describeBackend) the sessions before this one trained on, in order. */
  readonly trainedOn: readonly string[];
}

/**
 * What the epoch operators of one run share: its parts and services, fixed for the run. What changes
 * from epoch to epoch (the history, the best weights) travels in the stream's EpochState instead.
 */
export interface RunContext {
  readonly runId: string;
  readonly runDir: string;
  readonly spec: RunSpec;
  readonly parts: RunParts;
  /** The batch chain attack → train (single thread or data-parallel). */
  readonly training: RunTraining;
  readonly store: CheckpointStore;
  /** The per-epoch evaluation, resolved by name through the registry's 'evaluator' kind. */
  readonly evaluator: Evaluator;
  /** Stateful like the model and the optimizer, and checkpointed with them. */
  readonly detectors: RunDetectors;
  /**
   * Delivers an event to every sink, then to the observers of the event stream. Every operator awaits
   * it, so nothing new is computed until the writers have taken the last event (back-pressure).
   */
  readonly emit: (ev: RunEvent) => Promise<void>;
  /** Checked between batches and after each epoch: true stops the run cleanly. */
  readonly shouldStop: () => boolean;
  /** Marks the training-split rows whose inputs were corrupted (identity without input corruption). */
  readonly markCorrupted: (c: ExampleColumns) => ExampleColumns;
  /** Every backend the run has trained on, this session's last (checkpointed: a skipped run names them). */
  readonly trainedOn: readonly string[];
  /** Wall time of the sessions before this one, and Date.now() when this one started. */
  readonly priorWallMs: number;
  readonly startWall: number;
}

/** Wall time of the whole run so far (all sessions). */
export function runWallMs(run: Pick<RunContext, 'priorWallMs' | 'startWall'>): number {
  return run.priorWallMs + (Date.now() - run.startWall);
}
