import * as tf from '@tensorflow/tfjs';
import { AtflowError, unknownName } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { apgdReport } from '../algorithms/attacks/apgd';
import { apgdTargetedReport, targetCount } from '../algorithms/attacks/apgd-targeted';
import { fabTargetedReport } from '../algorithms/attacks/fab';
import { squareReport } from '../algorithms/attacks/square';
import type { AttackReport } from '../algorithms/attacks/types';
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

export const STANDARD_BUDGET: AutoAttackBudget = {
  apgdSteps: 100,
  targets: 9,
  fabSteps: 100,
  squareQueries: 5000,
  squarePInit: 0.8,
  eotIter: 1,
};
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
  const stages =
    attacks === 'standard' ? [...STANDARD_STAGES] : attacks === 'rand' ? [...RAND_STAGES] : attacks.map((a) => checkStageName(a));
  if (!(options.threat.eps > 0))
    throw new AtflowError('ARGUMENT', `autoattack: ε must be > 0, got ${options.threat.eps}`, { eps: options.threat.eps });
  // the classes each stage needs, and why
  const needs: Partial<Record<AutoAttackStage, [number, string]>> = {
    'apgd-dlr': [3, 'the DLR loss divides by z_π1 − z_π3'],
    'apgd-t': [4, 'the targeted DLR loss divides by z_π1 − (z_π3 + z_π4)/2'],
    'fab-t': [2, 'a target class other than the label'],
  };
  for (const s of stages) {
    const need = needs[s];
    if (need && numClasses < need[0]) {
      throw new AtflowError(
        'ARGUMENT',
        `autoattack: '${s}' needs at least ${need[0]} classes (${need[1]}), ` +
          `but the model has ${numClasses}; drop it from --attacks (e.g. ` +
          `--attacks apgd-ce,square)`,
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
  if (!(AUTOATTACK_STAGES as readonly string[]).includes(name))
    throw unknownName('AutoAttack attack', name, [...AUTOATTACK_STAGES, 'standard', 'rand']);
  return name as AutoAttackStage;
}

/**
 * One stage on the examples it is given: its adversarial points (the caller disposes) and its report.
 * The attacks run as AutoAttack's ensemble needs them: a point stops being attacked once it is fooled
 * (APGD's iterations, FAB-T's runs; Square already does), which changes no robust flag.
 */
function runStage(
  stage: AutoAttackStage,
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  threat: ThreatModel,
  b: AutoAttackBudget,
): AttackReport {
  const s = deriveSeed(seed, stage);
  const { eps, norm } = threat;
  const run = { stopWhenFooled: true };
  switch (stage) {
    case 'apgd-ce':
      return apgdReport(model, x, y, s, { eps, norm, steps: b.apgdSteps, restarts: 1, loss: 'ce', eotIter: b.eotIter }, run);
    case 'apgd-dlr':
      return apgdReport(model, x, y, s, { eps, norm, steps: b.apgdSteps, restarts: 1, loss: 'dlr', eotIter: b.eotIter }, run);
    case 'apgd-t':
      return apgdTargetedReport(model, x, y, s, { eps, norm, steps: b.apgdSteps, targets: b.targets }, run);
    case 'fab-t':
      return fabTargetedReport(model, x, y, s, { eps, norm, steps: b.fabSteps, targets: b.targets }, run);
    case 'square':
      return squareReport(model, x, y, s, { eps, norm, queries: b.squareQueries, pInit: b.squarePInit });
  }
}

/**
 * Per example of a batch: whether it survived the stage, and the stage's best attempt on it: the point
 * of lowest margin z_y − max_{j≠y} z_j among those the stage evaluated the model at inside the threat
 * model (x, the iterates, the candidates, the returned point), with the class predicted there. So
 * every stage's margin means the same: ≤ the clean margin, < 0 exactly where the stage fooled it.
 */
export interface StageOutcome {
  readonly stage: AutoAttackStage;
  /** 1 = still robust after this stage (0 also for examples an earlier stage had already fooled). */
  readonly robust: Uint8Array;
  /** Predicted class at the stage's best attempt; −1 where the stage did not run on the example. */
  readonly predicted: Int32Array;
  /** z_y − max_{j≠y} z_j at the stage's best attempt; NaN where the stage did not run. */
  readonly margin: Float32Array;
  /** Points the stage attacked (those every earlier stage left robust). */
  readonly attacked: number;
  /** Wall time of the stage on this batch, seconds. */
  readonly seconds: number;
}

export interface AutoAttackBatchResult {
  readonly cleanPredicted: Int32Array;
  readonly cleanMargin: Float32Array;
  /** Wall time of the clean forward pass, seconds. */
  readonly cleanSeconds: number;
  readonly stages: StageOutcome[];
  /** 1 = robust under every stage. */
  readonly robust: Uint8Array;
}

/** A stage starting ('start', `seconds` 0) or finished ('end', its wall time) on a batch: for progress displays. */
export interface StageEvent {
  readonly stage: AutoAttackStage;
  readonly index: number;
  readonly phase: 'start' | 'end';
  readonly attacked: number;
  readonly seconds: number;
  /** Points of the batch still robust after the stage ('end'; at 'start', before it). */
  readonly robust: number;
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
 * The ensemble on one batch. `onStage` is called when each stage starts and ends (progress). The caller
 * keeps x and y; nothing is left allocated.
 */
export function autoAttackBatch(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: AutoAttackOptions,
  onStage?: (event: StageEvent) => void,
): AutoAttackBatchResult {
  const steps = autoAttackSteps(model, x, y, seed, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    onStage?.(r.value);
  }
}

/**
 * autoAttackBatch one stage at a time: yields a StageEvent as each stage starts and ends (no tensor of
 * its own is alive at a yield), returns the batch's result. An async caller awaits between stages (the
 * run's end-of-training evaluation delivers progress events to its sinks that way).
 */
export function* autoAttackSteps(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: AutoAttackOptions,
): Generator<StageEvent, AutoAttackBatchResult, void> {
  const { stages, budget } = resolveAutoAttack(options, model.numClasses);
  const n = x.shape[0];
  const t0 = performance.now();
  const clean = predictWithMargin(model, x, y);
  const cleanSeconds = (performance.now() - t0) / 1000;
  const labels = y.dataSync();
  const robust = Uint8Array.from(clean.predicted, (p, i) => (p === labels[i] ? 1 : 0));
  const outcomes: StageOutcome[] = [];
  for (let si = 0; si < stages.length; si++) {
    const stage = stages[si];
    const predicted = new Int32Array(n).fill(-1);
    const margin = new Float32Array(n).fill(NaN);
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (robust[i]) idx.push(i);
    yield { stage, index: si, phase: 'start', attacked: idx.length, seconds: 0, robust: idx.length };
    const started = performance.now();
    if (idx.length > 0) {
      const idxT = tf.tensor1d(idx, 'int32');
      const xs = tf.gather(x, idxT) as tf.Tensor4D;
      const ys = tf.gather(y, idxT) as tf.Tensor1D;
      let report: AttackReport | undefined;
      try {
        report = runStage(stage, model, xs, ys, seed, options.threat, budget);
        // the reference's check of the stage's points decides; they are one more point evaluated
        const at = predictWithMargin(model, report.adv, ys);
        idx.forEach((i, a) => {
          const own = report!.margin[a] <= at.margin[a];
          predicted[i] = own ? report!.predicted[a] : at.predicted[a];
          margin[i] = own ? report!.margin[a] : at.margin[a];
          if (at.predicted[a] !== labels[i]) robust[i] = 0;
        });
      } finally {
        tf.dispose([idxT, xs, ys, ...(report ? [report.adv] : [])]);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    outcomes.push({ stage, robust: robust.slice(), predicted, margin, attacked: idx.length, seconds });
    yield { stage, index: si, phase: 'end', attacked: idx.length, seconds, robust: robust.reduce((a, v) => a + v, 0) };
  }
  return { cleanPredicted: clean.predicted, cleanMargin: clean.margin, cleanSeconds, stages: outcomes, robust };
}
