import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import type { Attack, AttackOptions } from '../attacks/types';
import type { AttackSettings, ResolvedAttackSettings } from '../attacks/settings';
import type { ObjectiveFactory } from '../objectives/by-name';
import type { TeOptions } from './te';

/** The inner maximisation a trainer runs (docs/algorithms.md §4): the one AttackSettings, its start filled by the trainer. */
export type TrainerAttackSettings = ResolvedAttackSettings;

/**
 * The config's training attack (`attack`): its settings, the attack and its objective by registry name,
 * and any options of the attack's own (a plugin's, or apgd-ce's `rho`), which its schema checks.
 */
export interface TrainerAttackChoice extends Partial<AttackSettings> {
  /** The inner attack (config `attack.name`); default 'pgd' (ℓ∞ or ℓ2 by `norm`). */
  readonly name?: string;
  /** The objective it maximises (config `attack.objective`); default the trainer's own. */
  readonly objective?: string;
  readonly [option: string]: unknown;
}

/**
 * How a trainer resolves its inner attack (made with the attack's own options) and that attack's
 * objective by name: the run's registry (buildRun, data-parallel workers; config/builtins.ts lookupIn).
 */
export interface OperatorLookup {
  attack(name: string, options: Omit<TrainerAttackChoice, 'name' | 'objective'>): Attack<AttackOptions>;
  objective(name: string): ObjectiveFactory;
}

/** TE's contribution to one batch, on the device: w(t) and p̂ [B, K]. Owned by the operator that made it. */
export interface TeTensors {
  readonly weight: number;
  readonly target: tf.Tensor2D;
}

export interface TrainerAttackInput {
  readonly model: Model;
  /** Clean (augmented) batch, NHWC in [0, 1]. */
  readonly x: tf.Tensor4D;
  /** The labels trained on (int32). */
  readonly y: tf.Tensor1D;
  /** Seed of this batch's attack draws (random start). */
  readonly seed: number;
  /** The rows' source indices: each row's random start is drawn from (seed, its index), whatever the batch's split. */
  readonly rowKeys?: ArrayLike<number>;
  /** Eval-mode logits f(x) on the clean batch, computed once before the attack (TRADES' KL target). */
  readonly logitsNatEval: tf.Tensor2D;
  /** Present from TE's start epoch on. */
  readonly te: TeTensors | null;
}

export interface TrainerLossInput {
  readonly model: Model;
  readonly x: tf.Tensor4D;
  readonly xAdv: tf.Tensor4D;
  readonly y: tf.Tensor1D;
  readonly te: TeTensors | null;
}

export interface TrainerLossOutput {
  /** The scalar minimised (train-mode forwards). */
  readonly loss: tf.Scalar;
  /** Train-mode logits f(x) when the trainer has a natural forward (standard, TRADES, MART), else null. */
  readonly logitsNat: tf.Tensor2D | null;
  /** Train-mode logits f(x′) (for 'standard', x′ = x and this is f(x)). */
  readonly logitsAdv: tf.Tensor2D;
  /** Per-example TE penalty w(t)·mean_k (softmax − p̂)² [B] on the outputs the loss penalises; null without TE. */
  readonly tePenalty: tf.Tensor1D | null;
}

/**
 * A training algorithm as two halves that the `attack` and `train` operators share (the trainer owns
 * its attack: TRADES' attack needs the eval-mode natural logits, and TE must update before the attack).
 *
 * - `attack` runs in eval mode and returns a new x′ that the caller owns.
 * - `loss` runs the train-mode forwards; it is called inside tf.variableGrads, so every tensor it
 *   makes is freed by the caller's scope, except those the caller keeps from the output.
 */
export interface Trainer {
  readonly name: string;
  /** null for the clean trainer (x′ = x). */
  readonly attackSettings: TrainerAttackSettings | null;
  attack(input: TrainerAttackInput): tf.Tensor4D;
  loss(input: TrainerLossInput): TrainerLossOutput;
}

/**
 * Options every trainer factory takes: the config's `trainer` block (its schema's fields: `beta`, a
 * plugin's own), the training `attack` and the `te` settings.
 */
export interface TrainerOptions {
  readonly attack?: TrainerAttackChoice;
  /** TRADES / MART β. */
  readonly beta?: number;
  /**
   * TE settings when TE is composed onto this trainer (the TemporalEnsemble itself is passed to the
   * operators). Trainers read only their defaults from it: PGD-AT's unclamped start (loss.py PGD_TE) and
   * TRADES' `penaltyOn`.
   */
  readonly te?: TeOptions | null;
  /** A trainer's own options (a plugin's), checked by the schema it was registered with. */
  readonly [option: string]: unknown;
}
