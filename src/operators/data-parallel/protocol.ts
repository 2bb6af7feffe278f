import type { BatchStats } from '../../core/batch-stats';
import type { TrainerOptions } from '../trainers/types';
import type { StateLayout } from './state-layout';

/** Messages between the pool (main thread) and its workers. Everything here is structured-cloneable. */

/** A module's named export, loaded by path in a worker thread (a function, structured-cloneable as a reference). */
export interface ModuleExport {
  readonly module: string;
  readonly export: string;
}

/**
 * How a worker rebuilds the run's model and trainer: `builder` is called with the ReplicaSpec and
 * returns them; `plugins` are the registry's plugin modules, which the builder registers first. The
 * built-in builder (builtin-replica.ts) knows only the built-in tables; the run's (pipelines/replica.ts)
 * rebuilds the run's registry. `unportable` names what the run uses that no module can rebuild
 * (registered in code): more than one worker is then refused with it.
 */
export interface ReplicaRecipe {
  readonly builder: ModuleExport;
  readonly plugins: readonly ModuleExport[];
  readonly unportable?: string | null;
}

export interface ReplicaSpec {
  /** Model by registry name ('cnn-small', 'preact-resnet18', 'wrn-34-10', a plugin's, ...). */
  readonly model: string;
  readonly numClasses: number;
  readonly inputShape: readonly [number, number, number];
  /** Trainer by registry name + options (src/operators/trainers): the same objects as the single-thread path. */
  readonly trainer: string;
  readonly trainerOptions: TrainerOptions;
  readonly backend: 'wasm' | 'cpu';
  readonly builder: ModuleExport;
  readonly plugins: readonly ModuleExport[];
}

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
