import * as tf from '@tensorflow/tfjs';
import { AtflowError, unknownName } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { apgd } from '../algorithms/attacks/apgd';
import { apgdTargeted, targetCount } from '../algorithms/attacks/apgd-targeted';
import { fabTargeted } from '../algorithms/attacks/fab';
import { square } from '../algorithms/attacks/square';
import type { ThreatModel } from './threat-model';

/**
 * AutoAttack (Croce & Hein, ICML 2020) as an ensemble: each stage attacks only the examples every
 * earlier stage left robust; an example is robust under the ensemble if no stage fooled it.
 *   standard: APGD-CE (100 its, 1 restart) → APGD-T (9 targets × 100 its) → FAB-T (9 targets × 100 its)
 *             → Square (5,000 queries, p_init 0.8)
 *   rand:     APGD-CE → APGD-DLR, each with EoT over 20 draws (for randomised models)
 * Each stage is a function of (model, x, y, seed); the stages of a batch draw their randomness from
 * deriveSeed(seed, stage) so a batch's result does not depend on where an evaluation was resumed.
 */
export const AUTOATTACK_STAGES = ['apgd-ce', 'apgd-dlr', 'apgd-t', 'fab-t', 'square'] as const;
export type AutoAttackStage = (typeof AUTOATTACK_STAGES)[number];

export const STANDARD_STAGES: readonly AutoAttackStage[] = ['apgd-ce', 'apgd-t', 'fab-t', 'square'];
export const RAND_STAGES: readonly AutoAttackStage[] = ['apgd-ce', 'apgd-dlr'];

export interface AutoAttackBudget {
  /** APGD iterations (per target for APGD-T); default 100. */
  readonly apgdSteps: number;
  /** APGD-T and FAB-T target classes; default 9 (capped at K − 1). */
  readonly targets: number;
  /** FAB-T iterations per target; default 100. */
  readonly fabSteps: number;
  /** Square queries; default 5,000. */
  readonly squareQueries: number;
  /** Square's initial window fraction; default 0.8. */
  readonly squarePInit: number;
  /** EoT draws of the gradient (AutoAttack's `rand` version: 20); default 1. */
  readonly eotIter: number;
}

export const STANDARD_BUDGET: AutoAttackBudget = { apgdSteps: 100, targets: 9, fabSteps: 100, squareQueries: 5000, squarePInit: 0.8, eotIter: 1 };
export const RAND_BUDGET: AutoAttackBudget = { ...STANDARD_BUDGET, eotIter: 20 };

export interface AutoAttackOptions {
  /** The ball AutoAttack attacks in (its norm and ε; threatModel builds and checks it). */
  readonly threat: ThreatModel;
  /** 'standard', 'rand', or a list of stage names; default 'standard'. */
  readonly attacks?: 'standard' | 'rand' | readonly string[];
  readonly budget?: Partial<AutoAttackBudget>;
}

/** The stage list and budget for `attacks`, checked (unknown names get the closest known one). */
export function resolveAutoAttack(options: AutoAttackOptions, numClasses: number): { stages: AutoAttackStage[]; budget: AutoAttackBudget } {
  const attacks = options.attacks ?? 'standard';
  const base = attacks === 'rand' ? RAND_BUDGET : STANDARD_BUDGET;
  const budget = { ...base, ...options.budget };
  const stages = attacks === 'standard' ? [...STANDARD_STAGES] : attacks === 'rand' ? [...RAND_STAGES] : attacks.map((a) => checkStageName(a));
  if (!(options.threat.eps > 0)) throw new AtflowError('ARGUMENT', `autoattack: ε must be > 0, got ${options.threat.eps}`, { eps: options.threat.eps });
  for (const s of stages) {
    if ((s === 'apgd-dlr' && numClasses < 3) || ((s === 'apgd-t' || s === 'fab-t') && numClasses < (s === 'apgd-t' ? 4 : 2))) {
      throw new AtflowError(
        'ARGUMENT',
        `autoattack: '${s}' needs at least ${s === 'apgd-t' ? 4 : 3} classes (the ${s === 'apgd-t' ? 'targeted ' : ''}DLR loss), but the model has ${numClasses}; drop it from --attacks (e.g. --attacks apgd-ce,square)`,
        { stage: s, numClasses },
      );
    }
  }
  if (budget.targets > numClasses - 1 && stages.some((s) => s === 'apgd-t' || s === 'fab-t')) {
    // AutoAttack's check_n_classes warns here; atflow caps the targets at K − 1 (targetCount)
    budget.targets = targetCount(budget.targets, numClasses);
  }
  return { stages, budget };
}

export function checkStageName(name: string): AutoAttackStage {
  if (!(AUTOATTACK_STAGES as readonly string[]).includes(name)) throw unknownName('AutoAttack attack', name, [...AUTOATTACK_STAGES, 'standard', 'rand']);
  return name as AutoAttackStage;
}

/** One stage on the examples it is given; returns the adversarial points (the caller disposes). */
function runStage(stage: AutoAttackStage, model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, threat: ThreatModel, b: AutoAttackBudget): tf.Tensor4D {
  const s = deriveSeed(seed, stage);
  const { eps, norm } = threat;
  switch (stage) {
    case 'apgd-ce':
      return apgd(model, x, y, s, { eps, norm, steps: b.apgdSteps, restarts: 1, loss: 'ce', eotIter: b.eotIter });
    case 'apgd-dlr':
      return apgd(model, x, y, s, { eps, norm, steps: b.apgdSteps, restarts: 1, loss: 'dlr', eotIter: b.eotIter });
    case 'apgd-t':
      return apgdTargeted(model, x, y, s, { eps, norm, steps: b.apgdSteps, targets: b.targets });
    case 'fab-t':
      return fabTargeted(model, x, y, s, { eps, norm, steps: b.fabSteps, targets: b.targets });
    case 'square':
      return square(model, x, y, s, { eps, norm, queries: b.squareQueries, pInit: b.squarePInit });
  }
}

/** Per example of a batch: whether it survived the stage, the class predicted at the stage's point and the margin there. */
export interface StageOutcome {
  readonly stage: AutoAttackStage;
  /** 1 = still robust after this stage (0 also for examples an earlier stage had already fooled). */
  readonly robust: Uint8Array;
  /** Predicted class at the stage's returned point; −1 where the stage did not run on the example. */
  readonly predicted: Int32Array;
  /** z_y − max_{j≠y} z_j at the stage's returned point; NaN where the stage did not run. */
  readonly margin: Float32Array;
}

export interface AutoAttackBatchResult {
  readonly cleanPredicted: Int32Array;
  readonly cleanMargin: Float32Array;
  readonly stages: StageOutcome[];
  /** 1 = robust under every stage. */
  readonly robust: Uint8Array;
}

/** Predictions and margins z_y − max_{j≠y} z_j (eval mode). */
export function predictWithMargin(model: Model, x: tf.Tensor4D, y: tf.Tensor1D): { predicted: Int32Array; margin: Float32Array } {
  const [logits, labels] = tf.tidy(() => [model.apply(x, 'eval').dataSync(), y.dataSync()]);
  const n = x.shape[0];
  const k = logits.length / Math.max(n, 1);
  const predicted = new Int32Array(n);
  const margin = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let other = -Infinity;
    for (let j = 0; j < k; j++) {
      if (logits[i * k + j] > logits[i * k + best]) best = j;
      if (j !== labels[i] && logits[i * k + j] > other) other = logits[i * k + j];
    }
    predicted[i] = best;
    margin[i] = logits[i * k + labels[i]] - other;
  }
  return { predicted, margin };
}

/**
 * The ensemble on one batch. `onStage(stage, done)` is called after every stage (progress). The caller
 * keeps x and y; nothing is left allocated.
 */
export function autoAttackBatch(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: AutoAttackOptions,
  onStage?: (stage: AutoAttackStage, index: number) => void,
): AutoAttackBatchResult {
  const { stages, budget } = resolveAutoAttack(options, model.numClasses);
  const n = x.shape[0];
  const clean = predictWithMargin(model, x, y);
  const labels = y.dataSync();
  const robust = Uint8Array.from(clean.predicted, (p, i) => (p === labels[i] ? 1 : 0));
  const outcomes: StageOutcome[] = [];
  stages.forEach((stage, si) => {
    const predicted = new Int32Array(n).fill(-1);
    const margin = new Float32Array(n).fill(NaN);
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (robust[i]) idx.push(i);
    if (idx.length > 0) {
      const idxT = tf.tensor1d(idx, 'int32');
      const xs = tf.gather(x, idxT) as tf.Tensor4D;
      const ys = tf.gather(y, idxT) as tf.Tensor1D;
      const adv = runStage(stage, model, xs, ys, seed, options.threat, budget);
      const at = predictWithMargin(model, adv, ys);
      idx.forEach((i, a) => {
        predicted[i] = at.predicted[a];
        margin[i] = at.margin[a];
        if (at.predicted[a] !== labels[i]) robust[i] = 0;
      });
      tf.dispose([idxT, xs, ys, adv]);
    }
    outcomes.push({ stage, robust: robust.slice(), predicted, margin });
    onStage?.(stage, si);
  });
  return { cleanPredicted: clean.predicted, cleanMargin: clean.margin, stages: outcomes, robust };
}
