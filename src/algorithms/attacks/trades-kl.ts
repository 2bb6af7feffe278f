import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { tradesKlObjective } from '../objectives/trades-kl';
import { pgdL2 } from './pgd-l2';
import { pgdLinf } from './pgd-linf';
import type { AttackObjective, Norm, RandomStart } from './types';
import { checkAttackInputs } from './validate';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

export interface TradesKlAttackOptions {
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  /** Default 'linf' (train.py always uses ℓ∞); 'l2' steps as docs/algorithms.md §4.2. */
  readonly norm?: Norm;
  /** Default 'normal': x + 0.001·N(0, I), unclamped, for both norms (docs/algorithms.md §4.3). */
  readonly randomStart?: RandomStart;
  readonly restarts?: number;
  /**
   * Eval-mode logits on the clean x, if the caller already has them (the TE EMA forward computes exactly
   * these). Owned by the caller. Otherwise the attack computes them once with model.apply(x, 'eval').
   */
  readonly logitsNat?: tf.Tensor2D;
  /**
   * Replaces the default objective KL_sum(softmax(logitsNat) ‖ softmax(f(x'))), e.g. TRADES+TE after the
   * start epoch: withTePenalty(tradesKlObjective(logitsNat, {scale: β/B}), {weight, targets}).
   */
  readonly objective?: AttackObjective;
}

/**
 * The TRADES KL attack (docs/algorithms.md §4.3): maximise KL_sum(p(x) ‖ p(x')) with the clean logits computed once
 * in eval mode (no gradient flows into them), from x + 0.001·N(0, I), with ℓ∞ sign steps + projection +
 * [0, 1] clamp (or the ℓ2 steps of §4.2).
 */
export function tradesKlAttack(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: TradesKlAttackOptions): tf.Tensor4D {
  checkAttackInputs('trades-kl', model, x, y);
  const ownLogits = options.objective === undefined && options.logitsNat === undefined;
  const logitsNat = options.objective ? undefined : (options.logitsNat ?? tf.tidy(() => model.apply(x, 'eval')));
  try {
    const objective = options.objective ?? tradesKlObjective(logitsNat as tf.Tensor2D);
    const common = {
      eps: options.eps,
      alpha: options.alpha,
      steps: options.steps,
      randomStart: options.randomStart ?? 'normal',
      restarts: options.restarts,
      objective,
    } as const;
    return (options.norm ?? 'linf') === 'l2' ? pgdL2(model, x, y, seed, common) : pgdLinf(model, x, y, seed, common);
  } finally {
    if (ownLogits) logitsNat?.dispose();
  }
}

/** The registry's 'trades-kl': TRADES' attack, KL(p(x) ‖ p(x′)) with its own 0.001·N start. */
export const tradesKlEntry: NamedPart<Attack<AttackOptions>, AttackSettings> = {
  name: 'trades-kl',
  options: attackSettingsSchema,
  create: () => tradesKlAttack,
};
