import type { BatchStats } from '../../core/batch-stats';
import type { ReplicaSpec } from '../../config/replica';
import type { StateLayout } from './state-layout';

/** Messages between the pool (main thread) and its workers. Everything here is structured-cloneable. */

export interface InitMessage {
  readonly type: 'init';
  readonly replica: ReplicaSpec;
  readonly layout: StateLayout;
  readonly state: SharedArrayBuffer;
}

/** One worker's share of a step; `x` and the arrays are transferred. */
export interface StepMessage {
  readonly type: 'step';
  readonly id: number;
  readonly x: Float32Array;
  readonly shape: [number, number, number, number];
  readonly labels: Int32Array;
  /** The batch's attack seed; each row's random start comes from (seed, rowKeys[i]). */
  readonly seed: number;
  /** The share's rows' source indices. */
  readonly rowKeys: Int32Array;
  /** TE's weight and p̂ rows of this share ([n·K]), null when TE is off. */
  readonly te: { readonly weight: number; readonly target: Float32Array } | null;
}

export interface CloseMessage {
  readonly type: 'close';
}

export type ToWorker = InitMessage | StepMessage | CloseMessage;

/** What one share's attack + train-mode gradient produced. Arrays are transferred back. */
export interface ShareResult {
  /** The share's mean loss (the trainer's scalar over the share). */
  readonly loss: number;
  /** Gradient of the share's loss per parameter, in layout order (parameters only); null where the loss does not reach it. */
  readonly grads: (Float32Array | null)[];
  /** Buffers after the share's train-mode forwards (BN running statistics), in layout order. */
  readonly buffers: (Float32Array | Int32Array)[];
  /** Every train-mode BatchNorm forward's batch statistics over the share, in order (merged exactly on the main thread). */
  readonly bnStats: BatchStats[];
  /** Eval-mode f(x) before the attack [n·K]. */
  readonly logitsNatEval: Float32Array;
  /** Train-mode f(x) [n·K] for trainers with a natural forward, else null. */
  readonly logitsNat: Float32Array | null;
  /** Train-mode f(x′) [n·K]. */
  readonly logitsAdv: Float32Array;
  readonly tePenalty: Float32Array | null;
  /** Milliseconds the worker spent on the attack and on the gradient. */
  readonly attackMs: number;
  readonly gradMs: number;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly backend: string }
  | { readonly type: 'step-done'; readonly id: number; readonly result: ShareResult }
  | { readonly type: 'closed'; readonly numTensors: number }
  | { readonly type: 'error'; readonly id: number | null; readonly code: string; readonly message: string };
