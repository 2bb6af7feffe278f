import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed, Rng } from '../../core/rng';
import { crossEntropyPerExample } from '../objectives/ce';
import { checkDlrClasses, dlrLossPerExample } from '../objectives/dlr';
import { checkAttackInputs, checkInteger, checkNonNegative } from './validate';

/**
 * APGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), ℓ∞, untargeted, written from the paper and checked step by step
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
}

interface RunResult {
  xBest: tf.Tensor4D;
  xBestAdv: tf.Tensor4D;
  fooled: Uint8Array;
  lossBest: Float32Array;
}

const MOMENTUM = 0.75;

function perExampleLoss(kind: ApgdLoss): (logits: tf.Tensor2D, y: tf.Tensor1D) => tf.Tensor1D {
  return kind === 'dlr' ? dlrLossPerExample : crossEntropyPerExample;
}

/** Loss per example, predictions and ∇_x Σ_i loss_i at x (eval mode), from one forward and one backward. */
function evaluateAt(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, loss: ApgdLoss): { grad: tf.Tensor4D; lossIndiv: Float32Array; correct: Uint8Array } {
  const lossFn = perExampleLoss(loss);
  let kept: tf.Tensor[] = [];
  const grad = tf.tidy(() =>
    tf.grad((xx: tf.Tensor) => {
      const logits = model.apply(xx as tf.Tensor4D, 'eval');
      const li = lossFn(logits, y);
      kept = [tf.keep(li), tf.keep(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'))];
      return tf.sum(li);
    })(x),
  ) as tf.Tensor4D;
  const lossIndiv = new Float32Array(kept[0].dataSync());
  const correct = Uint8Array.from(kept[1].dataSync());
  tf.dispose(kept);
  return { grad, lossIndiv, correct };
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

function apgdSingleRun(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, eps: number, nIter: number, rho: number, loss: ApgdLoss): RunResult {
  const n = x.shape[0];
  const checkpoints = apgdCheckpoints(nIter);
  let nextCheckpoint = 0;
  const t = new Rng(seed).fillUniform(new Float32Array(x.size), -1, 1);
  let xAdv = tf.tidy(() => {
    const tt = tf.tensor(t, x.shape, 'float32') as tf.Tensor4D;
    const tInf = tf.reshape(tf.max(tf.abs(tf.reshape(tt, [n, -1])), 1), [n, 1, 1, 1]);
    return tf.clipByValue(tf.add(x, tf.mul(tf.div(tt, tf.add(tInf, 1e-12)), eps)), 0, 1) as tf.Tensor4D;
  });
  let xBest = tf.clone(xAdv);
  let xBestAdv = tf.clone(xAdv);
  let xAdvOld = tf.clone(xAdv);
  const first = evaluateAt(model, xAdv, y, loss);
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
      const z = project(tf.add(xAdv, tf.mul(eta, tf.sign(grad))) as tf.Tensor4D, x, eps);
      const momentumTerm = tf.mul(tf.sub(xAdv, xAdvOld), 1 - a);
      return project(tf.add(tf.add(xAdv, tf.mul(tf.sub(z, xAdv), a)), momentumTerm) as tf.Tensor4D, x, eps);
    });
    xAdvOld.dispose();
    xAdvOld = xAdv;
    xAdv = next;

    const ev = evaluateAt(model, xAdv, y, loss);
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
  const B = x.shape[0];

  const cleanCorrect = tf.tidy(() => tf.cast(tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y), 'int32'));
  const robust = Uint8Array.from(cleanCorrect.dataSync());
  cleanCorrect.dispose();
  const bestLoss = new Float32Array(B).fill(-Infinity);
  let adv = tf.clone(x);
  for (let r = 0; r < restarts; r++) {
    const idx: number[] = [];
    for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
    if (idx.length === 0) break;
    const idxT = tf.tensor1d(idx, 'int32');
    const xs = tf.gather(x, idxT) as tf.Tensor4D;
    const ys = tf.gather(y, idxT) as tf.Tensor1D;
    const run = apgdSingleRun(model, xs, ys, deriveSeed(seed, 'attack-start', r), eps, nIter, rho, loss);
    // mapping into concat([adv, xBestAdv, xBest]): keep b, or take row j of the run's xBestAdv / xBest
    const mapping = new Int32Array(B);
    for (let b = 0; b < B; b++) mapping[b] = b;
    idx.forEach((b, j) => {
      if (run.fooled[j]) {
        robust[b] = 0;
        mapping[b] = B + j;
      } else if (run.lossBest[j] > bestLoss[b]) {
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

/** APGD-DLR (registry 'apgd-dlr'); throws an AtflowError for models with fewer than 3 classes. */
export function apgdDlr(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: Omit<ApgdOptions, 'loss'>): tf.Tensor4D {
  return apgd(model, x, y, seed, { ...options, loss: 'dlr' });
}
