import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import { checkTargetedDlrClasses, dlrTargetedLossPerExample } from '../objectives/dlr-targeted';
import { apgdSingleRun, apgdStart, attackStillRobust, type ApgdNorm, type ApgdRunOptions } from './apgd';
import type { AttackReport } from './types';
import { checkAttackInputs, checkInteger, checkNonNegative } from './validate';

/**
 * APGD-T (Croce & Hein, ICML 2020): APGD on the targeted DLR loss, run once per target class, written
 * from the paper and checked step by step against AutoAttack's APGDAttack_targeted:
 *  - for target rank r = 2 .. n_targets + 1, the still-robust examples are attacked towards the class
 *    their clean logits rank r-th (AutoAttack: output.sort()[1][:, −r]);
 *  - each run is one APGD run (apgd.ts: start, momentum, checkpoints, step-size halving) on
 *    −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2), success still meaning argmax ≠ y;
 *  - n_targets = min(9, K − 1): AutoAttack's standard version uses 9 and warns when K − 1 is smaller
 *    (checks.check_n_classes); here the targets simply stop at the last class.
 * Returns x for examples never fooled (as AutoAttack) and the last misclassified iterate of the run that
 * fooled them otherwise.
 * Target run j draws its start from deriveSeed(seed, 'attack-start', j).
 */
export interface ApgdTargetedOptions {
  readonly eps: number;
  /** Iterations per target; default 100 (AutoAttack). */
  readonly steps?: number;
  /** Target classes; default 9, capped at K − 1. */
  readonly targets?: number;
  readonly rho?: number;
  /** Default 'linf'. */
  readonly norm?: ApgdNorm;
}

/** The number of target classes APGD-T / FAB-T use for a K-class model: min(requested, K − 1). */
export function targetCount(requested: number, numClasses: number): number {
  return Math.max(0, Math.min(requested, numClasses - 1));
}

/** The class each row of `logits` ranks r-th (r = 1 is the argmax), as int32 [B]. */
export function classAtRank(logits: tf.Tensor2D, r: number): tf.Tensor1D {
  return tf.tidy(() => {
    const { indices } = tf.topk(logits, r);
    return tf.reshape(tf.slice(indices, [0, r - 1], [-1, 1]), [-1]) as tf.Tensor1D;
  });
}

export function apgdTargeted(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: ApgdTargetedOptions): tf.Tensor4D {
  return apgdTargetedReport(model, x, y, seed, options).adv;
}

/**
 * APGD-T with its per-row report (AutoAttack's APGD-T stage). The targets come from the clean logits
 * computed once for all targets (AutoAttack runs a forward pass per target for the same values).
 */
export function apgdTargetedReport(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: ApgdTargetedOptions, run: ApgdRunOptions = {}): AttackReport {
  const name = 'apgd-t';
  checkAttackInputs(name, model, x, y);
  checkTargetedDlrClasses(name, model.numClasses);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const nIter = checkInteger(name, 'steps', options.steps ?? 100, 1);
  const nTargets = targetCount(checkInteger(name, 'targets', options.targets ?? 9, 1), model.numClasses);
  const rho = checkNonNegative(name, 'rho', options.rho ?? 0.75);
  const norm = options.norm ?? 'linf';
  return attackStillRobust(model, x, y, nTargets, false, (xs, ys, j, cleanLogits) => {
    const yTarget = classAtRank(cleanLogits, j + 2);
    const start = apgdStart(xs, eps, norm, deriveSeed(seed, 'attack-start', j));
    const result = apgdSingleRun(model, xs, ys, start, eps, nIter, rho, targetedLoss, norm, 1, { ...run, target: yTarget });
    tf.dispose([yTarget, start]);
    return result;
  });
}

const targetedLoss = (logits: tf.Tensor2D, labels: tf.Tensor1D, target?: tf.Tensor1D): tf.Tensor1D => dlrTargetedLossPerExample(logits, labels, target!);
