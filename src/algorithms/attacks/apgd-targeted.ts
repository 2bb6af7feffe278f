import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed } from '../../core/rng';
import { checkTargetedDlrClasses, dlrTargetedLossPerExample } from '../objectives/dlr-targeted';
import { apgdSingleRun, apgdStart, attackStillRobust, rowOutcomes, type ApgdNorm, type ApgdRunOptions, type ApgdRunResult } from './apgd';
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
 * With `run.stopWhenFooled` the targets run together, as rows (target, point) of one batch of at most
 * TARGET_ROWS rows (groups of targets when there are more points): each row's iterates are those of its
 * own run, a point's outcome is its first fooled target's, and the rows of later targets stop when an
 * earlier one fooled the point. AutoAttack runs the targets one after the other on the points still
 * robust; on the few points the earlier stages leave, one batch of 9 × n rows keeps the cores busy and
 * dispatches each op once instead of 9 times. Target j's start is drawn for every point of x, then
 * gathered (the sequential runs draw for the points still robust, so the starts of a target after one
 * that fooled some point differ; the first target's are the same).
 */
export function apgdTargetedReport(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: ApgdTargetedOptions,
  run: ApgdRunOptions = {},
): AttackReport {
  const name = 'apgd-t';
  checkAttackInputs(name, model, x, y);
  checkTargetedDlrClasses(name, model.numClasses);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const nIter = checkInteger(name, 'steps', options.steps ?? 100, 1);
  const nTargets = targetCount(checkInteger(name, 'targets', options.targets ?? 9, 1), model.numClasses);
  const rho = checkNonNegative(name, 'rho', options.rho ?? 0.75);
  const norm = options.norm ?? 'linf';
  if (run.stopWhenFooled) return targetsTogether(model, x, y, seed, eps, nIter, rho, norm, nTargets);
  return attackStillRobust(model, x, y, nTargets, false, (xs, ys, j, cleanLogits) => {
    const yTarget = classAtRank(cleanLogits, j + 2);
    const start = apgdStart(xs, eps, norm, deriveSeed(seed, 'attack-start', j));
    const result = apgdSingleRun(model, xs, ys, start, eps, nIter, rho, targetedLoss, norm, 1, { ...run, target: yTarget });
    tf.dispose([yTarget, start]);
    return result;
  });
}

/** Rows of one batch when APGD-T's targets run together: bounds the memory of the batched runs. */
export const TARGET_ROWS = 256;

/** Classes of logit row b by decreasing value, ties: the lower index first (as tf.topk, classAtRank). */
export function rankedClasses(z: ArrayLike<number>, b: number, k: number): number[] {
  return Array.from({ length: k }, (_, j) => j).sort((p, q) => z[b * k + q] - z[b * k + p] || p - q);
}

function targetsTogether(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  eps: number,
  nIter: number,
  rho: number,
  norm: ApgdNorm,
  nTargets: number,
): AttackReport {
  const B = x.shape[0];
  const K = model.numClasses;
  const labels = y.dataSync() as Int32Array;
  const z = tf.tidy(() => model.apply(x, 'eval').dataSync());
  const { robust, margin, predicted } = rowOutcomes(z, labels, K);
  const order = Array.from({ length: B }, (_, b) => rankedClasses(z, b, K));
  // the adversarial point of each fooled point: (run result, row) until assembled at the end
  const chosen: { adv: tf.Tensor4D; row: number; point: number }[] = [];
  const results: tf.Tensor4D[] = [];
  try {
    for (let j0 = 0; j0 < nTargets;) {
      const idx: number[] = [];
      for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
      if (idx.length === 0) break;
      const js = Array.from({ length: Math.min(Math.max(1, Math.floor(TARGET_ROWS / idx.length)), nTargets - j0) }, (_, i) => j0 + i);
      j0 += js.length;
      const rowPoint = Int32Array.from(js.flatMap(() => idx));
      const rowOrder = Int32Array.from(js.flatMap((j) => idx.map(() => j)));
      const rowTarget = Int32Array.from(rowPoint, (b, r) => order[b][rowOrder[r] + 1]);
      const pointsT = tf.tensor1d(idx, 'int32');
      const rowsT = tf.tensor1d(rowPoint, 'int32');
      const start = tf.tidy(
        () =>
          tf.concat(
            js.map((j) => tf.gather(apgdStart(x, eps, norm, deriveSeed(seed, 'attack-start', j)), pointsT)),
            0,
          ) as tf.Tensor4D,
      );
      const xs = tf.gather(x, rowsT) as tf.Tensor4D;
      const ys = tf.gather(y, rowsT) as tf.Tensor1D;
      const target = tf.tensor1d(rowTarget, 'int32');
      let r: ApgdRunResult;
      try {
        r = apgdSingleRun(model, xs, ys, start, eps, nIter, rho, targetedLoss, norm, 1, {
          stopWhenFooled: true,
          target,
          groups: { group: rowPoint, order: rowOrder },
        });
      } finally {
        tf.dispose([pointsT, rowsT, start, xs, ys, target]);
      }
      results.push(r.xBestAdv);
      r.xBest.dispose();
      // per point: the first target (in rank order) that fooled it, and the lowest margin over its rows
      const first = new Map<number, number>();
      for (let row = 0; row < rowPoint.length; row++) {
        const b = rowPoint[row];
        if (r.marginBest[row] < margin[b]) {
          margin[b] = r.marginBest[row];
          predicted[b] = r.predictedBest[row];
        }
        if (r.fooled[row] && (!first.has(b) || rowOrder[first.get(b)!] > rowOrder[row])) first.set(b, row);
      }
      for (const [b, row] of first) {
        robust[b] = 0;
        chosen.push({ adv: r.xBestAdv, row, point: b });
      }
    }
    // x for the points no target fooled (as AutoAttack), the fooling iterate for the others
    const mapping = Int32Array.from({ length: B }, (_, b) => b);
    let offset = B;
    const offsets = new Map<tf.Tensor4D, number>();
    for (const t of results) {
      offsets.set(t, offset);
      offset += t.shape[0];
    }
    for (const c of chosen) mapping[c.point] = offsets.get(c.adv)! + c.row;
    const adv = tf.tidy(() => tf.gather(tf.concat([x, ...results], 0), tf.tensor1d(mapping, 'int32')) as tf.Tensor4D);
    return { adv, fooled: Uint8Array.from(robust, (v) => 1 - v), margin, predicted };
  } finally {
    tf.dispose(results);
  }
}

const targetedLoss = (logits: tf.Tensor2D, labels: tf.Tensor1D, target?: tf.Tensor1D): tf.Tensor1D =>
  dlrTargetedLossPerExample(logits, labels, target!);
