import type * as tf from '@tensorflow/tfjs';
import type { ExampleColumns, StepRecord } from './records';

export type Split = 'train' | 'test' | 'val';

/**
 * A batch before it has tensors: just which examples, in which epoch and step. Sources emit these
 * cheaply; tensors are born only when a plan is loaded (RxJS has no backpressure, DESIGN.md).
 */
export interface BatchPlan {
  readonly split: Split;
  /** 1-based epoch (docs/algorithms.md §1); 0 for evaluation passes outside training. */
  readonly epoch: number;
  /** 0-based step within the epoch. */
  readonly step: number;
  /** Stable dataset indices of the examples, in batch order. */
  readonly indices: Int32Array;
}

/**
 * The pipeline stages a batch goes through. The `stage` brand makes the operator chain type-checked:
 * `load → randomizeLabels → augment → attack → train` compiles, a wrong order does not.
 */
export type Stage = 'loaded' | 'labeled' | 'augmented' | 'attacked' | 'trained';

/** Fields common to all loaded batches. `x` is owned by the batch: its last consumer disposes it. */
export interface BatchData extends BatchPlan {
  /** NHWC float32 in [0, 1]. */
  readonly x: tf.Tensor4D;
  /** The dataset's labels. */
  readonly labelsTrue: Int32Array;
  /** The labels trained on (== labelsTrue unless randomizeLabels changed them). */
  readonly labelsUsed: Int32Array;
}

export interface LoadedBatch extends BatchData {
  readonly stage: 'loaded';
}
export interface LabeledBatch extends BatchData {
  readonly stage: 'labeled';
}
export interface AugmentedBatch extends BatchData {
  readonly stage: 'augmented';
}

/** Per-example number of classes etc. that operators need without reaching for the source. */
export interface DatasetInfo {
  readonly name: string;
  readonly numClasses: number;
  /** [H, W, C] */
  readonly imageShape: readonly [number, number, number];
  readonly sizes: Readonly<Partial<Record<Split, number>>>;
}

/** Frees a batch's tensors; safe to call twice. */
export function disposeBatch(batch: { x: tf.Tensor } & Record<string, unknown>): void {
  for (const v of Object.values(batch)) {
    if (v && typeof v === 'object' && 'dispose' in v && 'isDisposed' in v) {
      const t = v as tf.Tensor;
      if (!t.isDisposed) t.dispose();
    }
  }
}

/**
 * After `attack`: the clean batch plus x′ and what the trainer's loss needs from before the attack.
 * Ownership: `x` and `xAdv` pass on to `train`, which disposes both (it is their last consumer).
 */
export interface AttackedBatch extends BatchData {
  readonly stage: 'attacked';
  /** Adversarial examples x′ (NHWC, [0, 1]); for the clean trainer a copy of x. */
  readonly xAdv: tf.Tensor4D;
  readonly numClasses: number;
  /** Eval-mode logits f(x) on the clean batch before the attack, [B·K] row-major (host memory). */
  readonly logitsNatEval: Float32Array;
  /** TE for this batch once it is active: w(t) and p̂ [B·K] (after this batch's EMA update); else null. */
  readonly te: { readonly weight: number; readonly target: Float32Array } | null;
  /** Wall time of the eval forward, the TE update and the attack. */
  readonly attackMs: number;
}

/**
 * After `train`: no tensors left. The per-example train-phase columns (DESIGN.md `examples`, phase
 * 'train') and the optimisation step's record.
 */
export interface TrainedBatch extends BatchPlan {
  readonly stage: 'trained';
  readonly labelsTrue: Int32Array;
  readonly labelsUsed: Int32Array;
  readonly columns: ExampleColumns;
  readonly record: StepRecord;
}

/** The tensor-free result of a training step on `batch` (whatever computed it: one thread or several). */
export function trainedBatch(batch: BatchData, columns: ExampleColumns, record: StepRecord): TrainedBatch {
  const { split, epoch, step, indices, labelsTrue, labelsUsed } = batch;
  return { stage: 'trained', split, epoch, step, indices, labelsTrue, labelsUsed, columns, record };
}
