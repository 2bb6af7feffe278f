import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Model } from '../../core/model';
import { deriveSeed, Rng } from '../../core/rng';
import { crossEntropyPerExample } from '../objectives/ce';
import { checkDlrClasses, dlrLossPerExample } from '../objectives/dlr';
import { checkAttackInputs, checkInteger, checkNonNegative } from './validate';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

/**
 * APGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), ℓ∞ or ℓ2 (normalised-gradient steps, ℓ2-ball projection), untargeted
 * (the targeted version, APGD-T, is apgd-targeted.ts), written from the paper and checked step by step
 * against AutoAttack's autopgd_base.py (APGDAttack.attack_single_run / perturb):
 *  - start x + ε·t/‖t‖∞ with t ~ U(−1, 1), clamped to [0, 1]; initial step size η = 2ε per example;
 *  - z = P(x_k + η·sign(∇)), x_{k+1} = P(x_k + a·(z − x_k) + (1 − a)·(x_k − x_{k−1})), a = 1 at the
 *    first step then 0.75 (momentum); P = projection onto the ε-ball and [0, 1];
 *  - checkpoints after n_iter_2 = max(⌊0.22·N⌋, 1) iterations, then every k ← max(k − ⌊0.03·N⌋∨1, ⌊0.06·N⌋∨1)
 *    iterations (p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06));
 *  - at a checkpoint an example halves η and restarts from its best point (and that point's gradient) if
 *    (1) the loss increased in at most ρ·k of the last k steps (ρ = 0.75), or (2) η was not reduced at
 *    the previous checkpoint and the best loss did not improve since then.
 *    As in the reference, the first checkpoint's oldest comparison reads the not-yet-filled (zero) last
 *    row of the loss history (Python's loss_steps[-1]).
 *  - restarts attack only the examples still classified correctly, each from a fresh start.
 * Returns, per example: the first iterate that was misclassified if any (as AutoAttack), else the
 * highest-loss iterate over all restarts (AutoAttack returns x there; the highest-loss point has the same
 * prediction and a more informative loss), and x itself for examples misclassified on the clean input.
 */
export type ApgdLoss = 'ce' | 'dlr';

/** The norm APGD runs in: ℓ∞ (sign steps, box projection) or ℓ2 (normalised steps, ball projection). */
export type ApgdNorm = 'linf' | 'l2';

/** A loss per example, [B], that APGD maximises (the gradient of its sum is taken). */
export type PerExampleLoss = (logits: tf.Tensor2D, y: tf.Tensor1D) => tf.Tensor1D;

export interface ApgdOptions {
  readonly eps: number;
  /** Iterations N; default 100 (AutoAttack). */
  readonly steps?: number;
  /** Default 1. */
  readonly restarts?: number;
  /** Default 'ce'. 'dlr' needs ≥ 3 classes. */
  readonly loss?: ApgdLoss;
  /** Threshold of condition (1); default 0.75. */
  readonly rho?: number;
  /** Default 'linf'. */
  readonly norm?: ApgdNorm;
  /** Gradient draws averaged per iteration (EoT, for randomised models); default 1. */
  readonly eotIter?: number;
}

export interface ApgdRunResult {
  xBest: tf.Tensor4D;
  xBestAdv: tf.Tensor4D;
  fooled: Uint8Array;
  lossBest: Float32Array;
}

const MOMENTUM = 0.75;

function perExampleLoss(kind: ApgdLoss): PerExampleLoss {
  return kind === 'dlr' ? dlrLossPerExample : crossEntropyPerExample;
}

/**
 * Loss per example, predictions and ∇_x Σ_i loss_i at x (eval mode). With eotIter > 1 (Expectation over
 * Transformation, AutoAttack's `rand` version) the gradient is averaged over that many forward/backward
 * passes of a randomised model; loss and predictions are those of the last pass, as in AutoAttack.
 */
function evaluateAt(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, lossFn: PerExampleLoss, eotIter = 1): { grad: tf.Tensor4D; lossIndiv: Float32Array; correct: Uint8Array } {
  let kept: tf.Tensor[] = [];
  let grad: tf.Tensor4D | undefined;
  for (let e = 0; e < eotIter; e++) {
    tf.dispose(kept);
    const g = tf.tidy(() =>
      tf.grad((xx: tf.Tensor) => {
        const logits = model.apply(xx as tf.Tensor4D, 'eval');
        const li = lossFn(logits, y);
        kept = [tf.keep(li), tf.keep(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'))];
        return tf.sum(li);
      })(x),
    ) as tf.Tensor4D;
    if (grad === undefined) grad = g;
    else {
      const sum = tf.add(grad, g) as tf.Tensor4D;
      tf.dispose([grad, g]);
      grad = sum;
    }
  }
  if (eotIter > 1) {
    const mean = tf.div(grad!, eotIter) as tf.Tensor4D;
    grad!.dispose();
    grad = mean;
  }
  const lossIndiv = new Float32Array(kept[0].dataSync());
  const correct = Uint8Array.from(kept[1].dataSync());
  tf.dispose(kept);
  return { grad: grad!, lossIndiv, correct };
}

/** where(mask per example, a, b) for [n, H, W, C] tensors. */
function selectRows(mask: Uint8Array, a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const m = tf.broadcastTo(tf.reshape(tf.tensor1d(mask, 'bool'), [mask.length, 1, 1, 1]), a.shape);
    return tf.where(m, a, b) as tf.Tensor4D;
  });
}

function project(z: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.minimum(tf.maximum(z, tf.sub(x, eps)), tf.add(x, eps)), 0, 1) as tf.Tensor4D);
}

/** Per-example ℓ2 norms as [n, 1, 1, 1]. */
function l2Norms(t: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.sqrt(tf.sum(tf.square(tf.reshape(t, [t.shape[0], -1])), 1)), [t.shape[0], 1, 1, 1]) as tf.Tensor4D);
}

/** t / (‖t‖₂ + 1e−12) per example (AutoAttack's normalize for L2). */
function normalizeL2(t: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.div(t, tf.add(l2Norms(t), 1e-12)) as tf.Tensor4D);
}

/** clamp(x + δ/‖δ‖₂ · min(ε, ‖δ‖₂), 0, 1) with δ = z − x: AutoAttack's ℓ2 projection (then the box). */
function projectL2(z: tf.Tensor4D, x: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    const d = tf.sub(z, x) as tf.Tensor4D;
    return tf.clipByValue(tf.add(x, tf.mul(normalizeL2(d), tf.minimum(l2Norms(d), eps))), 0, 1) as tf.Tensor4D;
  });
}

/**
 * The random start of one APGD run: ℓ∞ x + ε·t/‖t‖∞ with t ~ U(−1, 1); ℓ2 x + ε·t/‖t‖₂ with t ~ N(0, I);
 * clamped to [0, 1]. Drawn on the JS side from `new Rng(seed)` (identical on every backend).
 */
export function apgdStart(x: tf.Tensor4D, eps: number, norm: ApgdNorm, seed: number): tf.Tensor4D {
  const n = x.shape[0];
  const rng = new Rng(seed);
  const t = norm === 'l2' ? rng.fillNormal(new Float32Array(x.size), 0, 1) : rng.fillUniform(new Float32Array(x.size), -1, 1);
  return tf.tidy(() => {
    const tt = tf.tensor(t, x.shape, 'float32') as tf.Tensor4D;
    const scale = norm === 'l2' ? l2Norms(tt) : tf.reshape(tf.max(tf.abs(tf.reshape(tt, [n, -1])), 1), [n, 1, 1, 1]);
    return tf.clipByValue(tf.add(x, tf.mul(tf.div(tt, tf.add(scale, 1e-12)), eps)), 0, 1) as tf.Tensor4D;
  });
}

/**
 * The checkpoints of an N-iteration run: after `at` iterations, looking back over the last `window`
 * steps. First at n_iter_2 = max(⌊0.22·N⌋, 1), then the window shrinks by max(⌊0.03·N⌋, 1) down to
 * max(⌊0.06·N⌋, 1): the integer form of p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) in AutoAttack.
 */
export function apgdCheckpoints(nIter: number): { at: number; window: number }[] {
  const nIter2 = Math.max(Math.floor(0.22 * nIter), 1);
  const nIterMin = Math.max(Math.floor(0.06 * nIter), 1);
  const sizeDecr = Math.max(Math.floor(0.03 * nIter), 1);
  const out: { at: number; window: number }[] = [];
  let window = nIter2;
  for (let at = nIter2; at <= nIter; ) {
    out.push({ at, window });
    window = Math.max(window - sizeDecr, nIterMin);
    at += window;
  }
  return out;
}

/**
 * One APGD run from a given start (already in the ε-ball and [0, 1]); the caller keeps `start`.
 * Exported for the AutoAttack cross-check, which feeds the reference's own start point.
 */
export function apgdSingleRun(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  start: tf.Tensor4D,
  eps: number,
  nIter: number,
  rho: number,
  lossFn: PerExampleLoss,
  norm: ApgdNorm = 'linf',
  eotIter = 1,
): ApgdRunResult {
  const n = x.shape[0];
  const checkpoints = apgdCheckpoints(nIter);
  let nextCheckpoint = 0;
  let xAdv = tf.clone(start);
  let xBest = tf.clone(xAdv);
  let xBestAdv = tf.clone(xAdv);
  let xAdvOld = tf.clone(xAdv);
  const first = evaluateAt(model, xAdv, y, lossFn, eotIter);
  let grad = first.grad;
  let gradBest = tf.clone(grad);
  const acc = first.correct.slice();
  const lossBest = first.lossIndiv.slice();
  const stepSize = new Float32Array(n).fill(2 * eps);
  const lossSteps = Array.from({ length: nIter }, () => new Float32Array(n));
  let lossBestLastCheck = lossBest.slice();
  let reducedLastCheck = new Float32Array(n).fill(1);

  for (let i = 0; i < nIter; i++) {
    const a = i > 0 ? MOMENTUM : 1.0;
    const next = tf.tidy(() => {
      const eta = tf.tensor(stepSize, [n, 1, 1, 1], 'float32');
      const proj = norm === 'l2' ? projectL2 : project;
      const direction = norm === 'l2' ? normalizeL2(grad) : tf.sign(grad);
      const z = proj(tf.add(xAdv, tf.mul(eta, direction)) as tf.Tensor4D, x, eps);
      const momentumTerm = tf.mul(tf.sub(xAdv, xAdvOld), 1 - a);
      return proj(tf.add(tf.add(xAdv, tf.mul(tf.sub(z, xAdv), a)), momentumTerm) as tf.Tensor4D, x, eps);
    });
    xAdvOld.dispose();
    xAdvOld = xAdv;
    xAdv = next;

    const ev = evaluateAt(model, xAdv, y, lossFn, eotIter);
    grad.dispose();
    grad = ev.grad;

    const misclassified = new Uint8Array(n);
    const improved = new Uint8Array(n);
    for (let b = 0; b < n; b++) {
      misclassified[b] = ev.correct[b] ? 0 : 1;
      acc[b] = acc[b] & ev.correct[b];
      improved[b] = ev.lossIndiv[b] > lossBest[b] ? 1 : 0;
      if (improved[b]) lossBest[b] = ev.lossIndiv[b];
    }
    lossSteps[i].set(ev.lossIndiv);
    const replace = (mask: Uint8Array, a4: tf.Tensor4D, b4: tf.Tensor4D): tf.Tensor4D => {
      const out = selectRows(mask, a4, b4);
      b4.dispose();
      return out;
    };
    xBestAdv = replace(misclassified, xAdv, xBestAdv);
    xBest = replace(improved, xAdv, xBest);
    gradBest = replace(improved, grad, gradBest);

    const checkpoint = checkpoints[nextCheckpoint];
    if (checkpoint !== undefined && i + 1 === checkpoint.at) {
      nextCheckpoint += 1;
      const k = checkpoint.window;
      const reduce = new Uint8Array(n);
      for (let b = 0; b < n; b++) {
        let increases = 0;
        for (let c = 0; c < k; c++) {
          const prev = i - c - 1 < 0 ? i - c - 1 + nIter : i - c - 1; // Python's negative index
          if (lossSteps[i - c][b] > lossSteps[prev][b]) increases += 1;
        }
        const oscillation = increases <= k * rho ? 1 : 0;
        const noImprovement = (1 - reducedLastCheck[b]) * (lossBestLastCheck[b] >= lossBest[b] ? 1 : 0);
        reduce[b] = Math.max(oscillation, noImprovement) > 0 ? 1 : 0;
      }
      reducedLastCheck = Float32Array.from(reduce);
      lossBestLastCheck = lossBest.slice();
      if (reduce.some((v) => v)) {
        for (let b = 0; b < n; b++) if (reduce[b]) stepSize[b] /= 2;
        const xRestart = selectRows(reduce, xBest, xAdv);
        xAdv.dispose();
        xAdv = xRestart;
        const gRestart = selectRows(reduce, gradBest, grad);
        grad.dispose();
        grad = gRestart;
      }
    }
  }
  tf.dispose([xAdv, xAdvOld, grad, gradBest]);
  const fooled = Uint8Array.from(acc, (v) => 1 - v);
  return { xBest, xBestAdv, fooled, lossBest };
}

/** APGD-ℓ∞ on CE or DLR; see the file comment. Restart r draws its start from deriveSeed(seed, 'attack-start', r). */
export function apgd(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: ApgdOptions): tf.Tensor4D {
  const loss = options.loss ?? 'ce';
  const name = `apgd-${loss}`;
  checkAttackInputs(name, model, x, y);
  if (loss === 'dlr') checkDlrClasses(name, model.numClasses);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const nIter = checkInteger(name, 'steps', options.steps ?? 100, 1);
  const restarts = checkInteger(name, 'restarts', options.restarts ?? 1, 1);
  const rho = checkNonNegative(name, 'rho', options.rho ?? 0.75);
  const norm = options.norm ?? 'linf';
  const eotIter = checkInteger(name, 'eotIter', options.eotIter ?? 1, 1);
  return attackStillRobust(model, x, y, restarts, true, (xs, ys, r) => {
    const start = apgdStart(xs, eps, norm, deriveSeed(seed, 'attack-start', r));
    const run = apgdSingleRun(model, xs, ys, start, eps, nIter, rho, perExampleLoss(loss), norm, eotIter);
    start.dispose();
    return run;
  });
}

/**
 * The outer loop AA's APGD runs share (restarts of APGD-CE / DLR, targets of APGD-T): each pass attacks
 * only the points still classified correctly, and a point a pass fools keeps that pass's adversarial
 * example and leaves the loop. With `keepBestLoss`, a point no pass fools keeps the iterate of highest
 * loss over the passes (APGD's restarts); otherwise it stays at x (APGD-T). `pass` returns a run on the
 * gathered rows and owns whatever else it creates; this disposes the run's tensors.
 */
export function attackStillRobust(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  passes: number,
  keepBestLoss: boolean,
  pass: (xs: tf.Tensor4D, ys: tf.Tensor1D, p: number) => ApgdRunResult,
): tf.Tensor4D {
  const B = x.shape[0];
  const robust = tf.tidy(() => Uint8Array.from(tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y).dataSync()));
  const bestLoss = new Float32Array(B).fill(-Infinity);
  let adv = tf.clone(x);
  for (let p = 0; p < passes; p++) {
    const idx: number[] = [];
    for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
    if (idx.length === 0) break;
    const idxT = tf.tensor1d(idx, 'int32');
    const xs = tf.gather(x, idxT) as tf.Tensor4D;
    const ys = tf.gather(y, idxT) as tf.Tensor1D;
    const run = pass(xs, ys, p);
    // mapping into concat([adv, xBestAdv, xBest]): keep b, or take row j of the run's xBestAdv / xBest
    const mapping = new Int32Array(B);
    for (let b = 0; b < B; b++) mapping[b] = b;
    idx.forEach((b, j) => {
      if (run.fooled[j]) {
        robust[b] = 0;
        mapping[b] = B + j;
      } else if (keepBestLoss && run.lossBest[j] > bestLoss[b]) {
        bestLoss[b] = run.lossBest[j];
        mapping[b] = B + idx.length + j;
      }
    });
    const merged = tf.tidy(() => tf.gather(tf.concat([adv, run.xBestAdv, run.xBest], 0), tf.tensor1d(mapping, 'int32')) as tf.Tensor4D);
    tf.dispose([adv, idxT, xs, ys, run.xBest, run.xBestAdv]);
    adv = merged;
  }
  return adv;
}

/** APGD-CE (registry 'apgd-ce'). */
export function apgdCe(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: Omit<ApgdOptions, 'loss'>): tf.Tensor4D {
  return apgd(model, x, y, seed, { ...options, loss: 'ce' });
}
apgdCe.fixedObjective = 'ce';

/** APGD-DLR (registry 'apgd-dlr'); throws an AtflowError for models with fewer than 3 classes. */
export function apgdDlr(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: Omit<ApgdOptions, 'loss'>): tf.Tensor4D {
  return apgd(model, x, y, seed, { ...options, loss: 'dlr' });
}
apgdDlr.fixedObjective = 'dlr';

/** APGD's options in a config: the attack settings, and ρ, the threshold of its step-size condition (1) (AutoAttack's 0.75). */
const apgdOptionsSchema = attackSettingsSchema.extend({ rho: z.number().gt(0).lt(1).default(0.75) }).strict();
type ApgdSettings = AttackSettings & { readonly rho: number };

/** An APGD variant with the config's ρ (the other settings come with each call). */
function withRho(attack: typeof apgdCe, rho: number): Attack<AttackOptions> {
  return Object.assign((model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: AttackOptions) => attack(model, x, y, seed, { ...options, rho }), { fixedObjective: attack.fixedObjective });
}

/** The registry's 'apgd-ce' and 'apgd-dlr': the settings' eps, steps, restarts and norm (APGD chooses its own steps and start), and ρ. */
export const apgdCeEntry: NamedPart<Attack<AttackOptions>, ApgdSettings> = { name: 'apgd-ce', options: apgdOptionsSchema, create: (o) => withRho(apgdCe, o.rho) };
export const apgdDlrEntry: NamedPart<Attack<AttackOptions>, ApgdSettings> = { name: 'apgd-dlr', options: apgdOptionsSchema, create: (o) => withRho(apgdDlr, o.rho) };
