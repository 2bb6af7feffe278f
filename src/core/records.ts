/**
 * Per-example records, columnar (one typed array per column), as the `examples` table of DESIGN.md.
 * Producers (trainers, the eval pass) fill these; sinks write them without reshaping.
 */
import type { Split } from './batch';

export type Phase = 'train' | 'eval';

export interface ExampleColumns {
  readonly epoch: number;
  readonly phase: Phase;
  /** Which split the rows are from (absent = 'train'); `example` indexes that split. Test and val rows are eval-phase. */
  readonly split?: Split;
  readonly example: Int32Array;
  readonly label_true: Int32Array;
  readonly label_used: Int32Array;
  /** 1 where label_used != label_true */
  readonly is_noisy: Uint8Array;
  /** 1 where the training input was replaced by inputCorruption (absent = all 0: no corruption, or a test/val row). */
  readonly input_corrupted?: Uint8Array;
  readonly loss_clean: Float32Array;
  readonly pred_clean: Int32Array;
  readonly correct_clean: Uint8Array;
  /** softmax probability of label_used on the clean input */
  readonly p_label_clean: Float32Array;
  /** logit of label_used minus the largest other logit (AUM's margin) */
  readonly margin_clean: Float32Array;
  readonly loss_adv: Float32Array;
  readonly pred_adv: Int32Array;
  readonly correct_adv: Uint8Array;
  readonly p_label_adv: Float32Array;
  readonly margin_adv: Float32Array;
  /** Entropy of the TE soft target p̂; NaN (written as null) before TE starts. */
  readonly te_target_entropy: Float32Array;
  /** Per-example TE penalty w(t)·mean_k (p_k − p̂_k)²; NaN (null) before TE starts. */
  readonly te_penalty: Float32Array;
}

export type EventKind = 'learned' | 'forgotten' | 'robust_learned' | 'robust_forgotten';

export interface EventColumns {
  /**
   * Which rows the transitions were seen in: 'train' = consecutive presentations in training (every
   * epoch, Toneva et al.'s forgetting events); 'eval' = consecutive evaluations of the training set
   * (the eval-mode pass, at evaluated epochs only).
   */
  readonly phase: Phase;
  readonly epoch: Int32Array;
  readonly example: Int32Array;
  readonly event: EventKind[];
  readonly is_noisy: Uint8Array;
  /** First epoch the example was (clean) correct, or -1 if never yet. */
  readonly first_learned_epoch: Int32Array;
}

export interface StepRecord {
  readonly epoch: number;
  readonly step: number;
  readonly loss: number;
  /** Σ over all parameter tensors of ‖∇W loss‖²_F, before weight decay (docs/algorithms.md §8.2). */
  readonly grad_norm_sq: number;
  readonly lr: number;
  readonly ms: number;
  readonly batch_size: number;
}

export interface EpochRecord {
  readonly epoch: number;
  readonly lr: number;
  readonly te_weight: number;
  readonly train_loss: number;
  readonly train_clean_acc: number;
  readonly train_clean_loss: number;
  readonly train_robust_acc: number;
  readonly train_robust_loss: number;
  readonly test_clean_acc: number;
  readonly test_clean_loss: number;
  readonly test_robust_acc: number;
  readonly test_robust_loss: number;
  readonly grad_norm_sq_mean: number;
  readonly wall_ms: number;
  /** Part of wall_ms spent in the per-epoch evaluation (test, val and training-set passes). */
  readonly eval_ms: number;
  readonly best_epoch: number;
  readonly best_rule: string;
}
