import type { BackendInfo } from './backend-info';
import type { EpochRecord, EventColumns, ExampleColumns, StepRecord } from './records';
import type { EvalProtocol } from './eval-protocol';

/**
 * One step of a long evaluation (an AutoAttack stage, an attack of the strong suite) on one batch,
 * starting or finished: what progress displays show.
 */
export interface EvalProgress {
  /** What is evaluated, e.g. 'autoattack final (epoch 80)'. */
  readonly what: string;
  /** The stage or attack, e.g. 'apgd-t'. */
  readonly step: string;
  readonly stepIndex: number;
  readonly steps: number;
  readonly batch: number;
  readonly batches: number;
  readonly phase: 'start' | 'end';
  /** Points the step attacks in this batch. */
  readonly attacked: number;
  /** The step's own wall time on this batch, seconds (0 at 'start'). */
  readonly stepSeconds: number;
  /** Seconds since the evaluation started. */
  readonly elapsed: number;
  /** Robust accuracy after this step over the examples done so far ('end'; NaN when not known). */
  readonly robustAcc: number;
}

/**
 * The one stream a run emits (multicast). Every sink (Parquet, Arrow, progress bar, checkpoint,
 * summary, report) subscribes to it; adding a sink never touches the operators.
 */
export type RunEvent =
  | {
      readonly type: 'run-start';
      readonly runId: string;
      readonly runDir: string;
      /** The validated, normalised config. */
      readonly spec: unknown;
      readonly seed: number;
      readonly backend: BackendInfo;
      /** ISO-8601 UTC */
      readonly startedAt: string;
      readonly epochs: number;
      readonly numClasses: number;
      readonly trainSize: number;
      /** Epoch the run (re)starts at: 1, or the epoch after the resumed checkpoint. */
      readonly firstEpoch: number;
      /**
       * The records of epochs 1 … firstEpoch − 1, restored from the resumed checkpoint ([] for a fresh
       * run): a sink that aggregates over epochs (summary: epochs, best, final, eval_share) starts from
       * the whole run's history, not only this session's epoch-end events.
       */
      readonly priorEpochs: readonly EpochRecord[];
      /** The per-epoch evaluation's attack and sizes (spec.json `evaluation`, summary.json `eval_protocol`). */
      readonly evaluation?: EvalProtocol;
    }
  | {
      readonly type: 'labels';
      readonly example: Int32Array;
      readonly label_true: Int32Array;
      readonly label_used: Int32Array;
      /** 1 where the example's input was corrupted (inputCorruption); absent = none was. */
      readonly input_corrupted?: Uint8Array;
      /** Realised fraction of labels that differ from the true ones. */
      readonly noiseRate: number;
    }
  | { readonly type: 'epoch-start'; readonly epoch: number; readonly lr: number; readonly teWeight: number; readonly steps: number }
  | { readonly type: 'step'; readonly record: StepRecord }
  | { readonly type: 'examples'; readonly columns: ExampleColumns }
  | { readonly type: 'events'; readonly columns: EventColumns }
  | { readonly type: 'epoch-end'; readonly record: EpochRecord }
  | { readonly type: 'complexity'; readonly epoch: number; readonly measures: Readonly<Record<string, number>> }
  | { readonly type: 'checkpoint'; readonly epoch: number; readonly path: string }
  /** The end-of-training evaluation at work (eval.final.strong): one per stage / attack and batch, start and end. */
  | { readonly type: 'eval-progress'; readonly epoch: number; readonly progress: EvalProgress }
  /** Something the user should know (a setting that does nothing, a sanity check that failed); epoch 0 = before training. */
  | { readonly type: 'warning'; readonly epoch: number; readonly message: string }
  | {
      readonly type: 'run-end';
      readonly status: 'completed' | 'interrupted' | 'failed';
      readonly wallMs: number;
      readonly error?: string;
    };

export type RunEventType = RunEvent['type'];
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;
