import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Model } from '../../core/model';
import { deriveSeed, Rng } from '../../core/rng';
import { crossEntropyPerExample } from '../objectives/ce';
import { checkDlrClasses, dlrLossPerExample } from '../objectives/dlr';
import type { AttackReport } from './types';
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
 * Returns, per example: the last iterate that was misclassified if any (AutoAttack's x_best_adv), else the
 * highest-loss iterate over all restarts (AutoAttack returns x there; the highest-loss point has the same
 * prediction and a more informative loss), and x itself for examples misclassified on the clean input.
 * AutoAttack's ensemble runs it with `stopWhenFooled` (apgdSingleRun): a row stops at its first
 * misclassified iterate, which changes no robust flag and saves the iterations the reference spends
 * on points already broken.
 */
export type ApgdLoss = 'ce' | 'dlr';

/** The norm APGD runs in: ℓ∞ (sign steps, box projection) or ℓ2 (normalised steps, ball projection). */
export type ApgdNorm = 'linf' | 'l2';

/**
 * A loss per example, [B], that APGD maximises (the gradient of its sum is taken). `target` is the run's
 * target class per row (APGD-T), gathered with the rows still attacked.
 */
export type PerExampleLoss = (logits: tf.Tensor2D, y: tf.Tensor1D, target?: tf.Tensor1D) => tf.Tensor1D;

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
  /** The highest-loss iterate per row (with `stopWhenFooled`, a fooled row holds its adversarial point). */
  xBest: tf.Tensor4D;
  /** The last misclassified iterate per row (with `stopWhenFooled`, the first); the start where none was. */
  xBestAdv: tf.Tensor4D;
  fooled: Uint8Array;
  lossBest: Float32Array;
  /** Per row, the lowest margin z_y − max_{j≠y} z_j over the iterates evaluated, and the class predicted there. */
  marginBest: Float32Array;
  predictedBest: Int32Array;
}

/** How one APGD run is carried out (not what it computes). */
export interface ApgdRunOptions {
  /**
   * Stop iterating on a row once it is misclassified (AutoAttack's ensemble only needs that it was):
   * the other rows' iterates are unchanged, a fooled row keeps its first misclassified iterate, and
   * the run works on fewer rows from then on.
   */
  readonly stopWhenFooled?: boolean;
  /** The target class per row, passed to the loss as its third argument (APGD-T). */
  readonly target?: tf.Tensor1D;
  /**
   * With stopWhenFooled: rows that attack the same point towards different targets (APGD-T's targets
   * run together), `group` the point and `order` the target's rank. When a row is fooled, its group's
   * rows of higher order leave the run too: the point's outcome is that of its first fooled target.
   */
  readonly groups?: { readonly group: Int32Array; readonly order: Int32Array };
}

const MOMENTUM = 0.75;

function perExampleLoss(kind: ApgdLoss): PerExampleLoss {
  return kind === 'dlr' ? dlrLossPerExample : crossEntropyPerExample;
}

/** Margin z_y − max_{j≠y} z_j and argmax (first maximum, as tf.argMax) of logit row i. */
export function marginAndClass(
  logits: ArrayLike<number>,
  i: number,
  k: number,
  label: number,
  stride = k,
  offset = 0,
): { margin: number; predicted: number } {
  const o = i * stride + offset;
  let best = 0;
  let other = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = logits[o + j];
    if (v > logits[o + best]) best = j;
    if (j !== label && v > other) other = v;
  }
  return { margin: logits[o + label] - other, predicted: best };
}

/** Every row's margin, class and whether it is robust (classified as its label), from row-major logits: a stage's start. */
export function rowOutcomes(
  z: ArrayLike<number>,
  labels: Int32Array,
  k: number,
): { robust: Uint8Array; margin: Float32Array; predicted: Int32Array } {
  const n = labels.length;
  const robust = new Uint8Array(n);
  const margin = new Float32Array(n);
  const predicted = new Int32Array(n);
  for (let b = 0; b < n; b++) {
    const m = marginAndClass(z, b, k, labels[b]);
    margin[b] = m.margin;
    predicted[b] = m.predicted;
    robust[b] = m.predicted === labels[b] ? 1 : 0;
  }
  return { robust, margin, predicted };
}

/**
 * Loss per example, logits and ∇_x Σ_i loss_i at x (eval mode), read back in one transfer. With eotIter > 1
 * (Expectation over Transformation, AutoAttack's `rand` version) the gradient is averaged over that many
 * forward/backward passes of a randomised model; loss and logits are those of the last pass, as in AutoAttack.
 */
function evaluateAt(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  lossFn: PerExampleLoss,
  eotIter: number,
  target: tf.Tensor1D | undefined,
): { grad: tf.Tensor4D; values: Float32Array } {
  let kept: tf.Tensor[] = [];
  let grad: tf.Tensor4D | undefined;
  for (let e = 0; e < eotIter; e++) {
    tf.dispose(kept);
    const g = tf.tidy(() =>
      tf.grad((xx: tf.Tensor) => {
        const logits = model.apply(xx as tf.Tensor4D, 'eval');
        const li = lossFn(logits, y, target);
        kept = [tf.keep(li), tf.keep(logits)];
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
  // [loss_i, z_i0 … z_iK−1] per row: one read-back
  const packed = tf.tidy(() => tf.concat([tf.reshape(kept[0], [-1, 1]), kept[1]], 1));
  const values = packed.dataSync() as Float32Array;
  tf.dispose([packed, ...kept]);
  return { grad: grad!, values };
}

/** where(mask per row, a, b) for [n, H, W, C] tensors; `mask` is the row mask already on the device. */
function selectRows(mask: tf.Tensor, a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.where(tf.broadcastTo(mask, a.shape), a, b) as tf.Tensor4D);
}

/** The row mask as a [n, 1, 1, 1] bool tensor. */
function rowMask(mask: Uint8Array): tf.Tensor4D {
  return tf.tensor4d(mask, [mask.length, 1, 1, 1], 'bool');
}

/**
 * The ℓ∞ projection's bounds: P(z) = clamp(min(max(z, x − ε), x + ε), 0, 1) equals min(max(z, lo), hi)
 * with lo = max(x − ε, 0) and hi = min(x + ε, 1) (x in [0, 1], so the intervals meet): the same values
 * with two elementwise ops per projection instead of five.
 */
function linfBounds(x: tf.Tensor4D, eps: number): { lo: tf.Tensor4D; hi: tf.Tensor4D } {
  return tf.tidy(() => ({ lo: tf.maximum(tf.sub(x, eps), 0) as tf.Tensor4D, hi: tf.minimum(tf.add(x, eps), 1) as tf.Tensor4D }));
}

function projectBetween(z: tf.Tensor4D, lo: tf.Tensor4D, hi: tf.Tensor4D): tf.Tensor4D {
  return tf.minimum(tf.maximum(z, lo), hi) as tf.Tensor4D;
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
  for (let at = nIter2; at <= nIter;) {
    out.push({ at, window });
    window = Math.max(window - sizeDecr, nIterMin);
    at += window;
  }
  return out;
}

/** The device state of the rows a run still iterates on; `take` keeps a subset of them (by position). */
class ActiveRows {
  tensors: Record<string, tf.Tensor>;
  constructor(tensors: Record<string, tf.Tensor>) {
    this.tensors = tensors;
  }
  take(keep: Int32Array): void {
    const idx = tf.tensor1d(keep, 'int32');
    const next: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(this.tensors)) next[k] = tf.gather(t, idx);
    tf.dispose([idx, ...Object.values(this.tensors)]);
    this.tensors = next;
  }
  dispose(): void {
    tf.dispose(Object.values(this.tensors));
  }
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
  options: ApgdRunOptions = {},
): ApgdRunResult {
  const n = x.shape[0];
  const k = model.numClasses;
  const labels = y.dataSync() as Int32Array;
  const stopWhenFooled = options.stopWhenFooled ?? false;
  const checkpoints = apgdCheckpoints(nIter);
  let nextCheckpoint = 0;
  // per-row state on the host, indexed by the row of x
  const acc = new Uint8Array(n);
  const lossBest = new Float32Array(n);
  const marginBest = new Float32Array(n).fill(Infinity);
  const predictedBest = new Int32Array(n);
  const stepSize = new Float32Array(n).fill(2 * eps);
  const lossSteps = Array.from({ length: nIter }, () => new Float32Array(n));
  let lossBestLastCheck = new Float32Array(n);
  let reducedLastCheck = new Float32Array(n).fill(1);
  // the rows still iterated on (all of them unless stopWhenFooled), and their device state
  let active = Int32Array.from({ length: n }, (_, i) => i);
  const state = new ActiveRows({ y: tf.clone(y), xAdv: tf.clone(start), ...(options.target ? { target: tf.clone(options.target) } : {}) });
  Object.assign(state.tensors, norm === 'linf' ? linfBounds(x, eps) : { x: tf.clone(x) });
  const t = () => state.tensors as Record<string, tf.Tensor4D> & { y: tf.Tensor1D; target?: tf.Tensor1D };
  // fooled rows that left the run: their adversarial points, gathered into one tensor at the end
  const left: { rows: Int32Array; adv: tf.Tensor4D }[] = [];
  // the step size per row on the device, rebuilt when it changes
  let eta = null as tf.Tensor4D | null;
  const etaTensor = () =>
    (eta ??= tf.tensor4d(
      Float32Array.from(active, (r) => stepSize[r]),
      [active.length, 1, 1, 1],
    ));

  /** Reads one evaluation: loss, correctness, lowest margin; returns the positions newly misclassified. */
  const observe = (values: Float32Array, first: boolean, improved: Uint8Array, misclassified: Uint8Array): number => {
    let fooledNow = 0;
    for (let a = 0; a < active.length; a++) {
      const r = active[a];
      const loss = values[a * (k + 1)];
      const { margin, predicted } = marginAndClass(values, a, k, labels[r], k + 1, 1);
      const correct = predicted === labels[r] ? 1 : 0;
      if (margin < marginBest[r]) {
        marginBest[r] = margin;
        predictedBest[r] = predicted;
      }
      misclassified[a] = 1 - correct;
      if (first) {
        acc[r] = correct;
        lossBest[r] = loss;
      } else {
        if (acc[r] && !correct) fooledNow++;
        acc[r] &= correct;
        improved[a] = loss > lossBest[r] ? 1 : 0;
        if (improved[a]) lossBest[r] = loss;
      }
    }
    return fooledNow;
  };

  /** stopWhenFooled: the rows misclassified now leave the run with their current iterate (and the rows they make moot). */
  const groups = options.groups;
  const dropFooled = () => {
    const keep: number[] = [];
    const gone: number[] = [];
    // per group, the lowest order fooled so far: rows above it no longer matter
    const firstFooled = new Map<number, number>();
    if (groups)
      for (let r = 0; r < n; r++)
        if (!acc[r]) firstFooled.set(groups.group[r], Math.min(firstFooled.get(groups.group[r]) ?? Infinity, groups.order[r]));
    const moot = (r: number) => groups !== undefined && groups.order[r] > (firstFooled.get(groups.group[r]) ?? Infinity);
    active.forEach((r, a) => (acc[r] && !moot(r) ? keep : gone).push(a));
    if (gone.length === 0) return;
    const goneIdx = tf.tensor1d(gone, 'int32');
    left.push({ rows: Int32Array.from(gone, (a) => active[a]), adv: tf.gather(t().xAdv, goneIdx) as tf.Tensor4D });
    goneIdx.dispose();
    state.take(Int32Array.from(keep));
    active = Int32Array.from(keep, (a) => active[a]);
    eta?.dispose();
    eta = null;
  };

  const misclassified0 = new Uint8Array(n);
  const first = evaluateAt(model, t().xAdv, t().y, lossFn, eotIter, t().target);
  observe(first.values, true, new Uint8Array(n), misclassified0);
  lossBestLastCheck = lossBest.slice();
  Object.assign(state.tensors, {
    grad: first.grad,
    xBest: tf.clone(t().xAdv),
    xAdvOld: tf.clone(t().xAdv),
    gradBest: tf.clone(first.grad),
  });
  // the last misclassified iterate (kept for every row unless fooled rows leave the run)
  let xBestAdv: tf.Tensor4D | null = stopWhenFooled ? null : tf.clone(start);
  if (stopWhenFooled) dropFooled();

  for (let i = 0; i < nIter && active.length > 0; i++) {
    const a = i > 0 ? MOMENTUM : 1.0;
    const s = t();
    const etaNow = etaTensor(); // made outside the tidy: it lives until the step size changes
    const next = tf.tidy(() => {
      const direction = norm === 'l2' ? normalizeL2(s.grad) : tf.sign(s.grad);
      const stepped = tf.add(s.xAdv, tf.mul(etaNow, direction)) as tf.Tensor4D;
      const z = norm === 'l2' ? projectL2(stepped, s.x, eps) : projectBetween(stepped, s.lo, s.hi);
      const momentumTerm = tf.mul(tf.sub(s.xAdv, s.xAdvOld), 1 - a);
      const v = tf.add(tf.add(s.xAdv, tf.mul(tf.sub(z, s.xAdv), a)), momentumTerm) as tf.Tensor4D;
      return norm === 'l2' ? projectL2(v, s.x, eps) : projectBetween(v, s.lo, s.hi);
    });
    s.xAdvOld.dispose();
    s.xAdvOld = s.xAdv;
    s.xAdv = next;

    const ev = evaluateAt(model, s.xAdv, s.y, lossFn, eotIter, s.target);
    s.grad.dispose();
    s.grad = ev.grad;
    const improved = new Uint8Array(active.length);
    const misclassified = new Uint8Array(active.length);
    const fooledNow = observe(ev.values, false, improved, misclassified);
    for (let p = 0; p < active.length; p++) lossSteps[i][active[p]] = ev.values[p * (k + 1)];
    if (xBestAdv && misclassified.some((v) => v)) {
      const m = rowMask(misclassified);
      const updated = selectRows(m, s.xAdv, xBestAdv);
      tf.dispose([m, xBestAdv]);
      xBestAdv = updated;
    }
    if (improved.some((v) => v)) {
      const m = rowMask(improved);
      const xb = selectRows(m, s.xAdv, s.xBest);
      const gb = selectRows(m, s.grad, s.gradBest);
      tf.dispose([m, s.xBest, s.gradBest]);
      s.xBest = xb;
      s.gradBest = gb;
    }
    // a row fooled now leaves with this iterate (before a checkpoint could restart it from its best point)
    if (stopWhenFooled && fooledNow > 0) dropFooled();

    const checkpoint = checkpoints[nextCheckpoint];
    if (checkpoint !== undefined && i + 1 === checkpoint.at) {
      const s = t();
      nextCheckpoint += 1;
      const w = checkpoint.window;
      const reduce = new Uint8Array(active.length);
      const reducedNow = new Float32Array(n);
      active.forEach((r, p) => {
        let increases = 0;
        for (let c = 0; c < w; c++) {
          const prev = i - c - 1 < 0 ? i - c - 1 + nIter : i - c - 1; // Python's negative index
          if (lossSteps[i - c][r] > lossSteps[prev][r]) increases += 1;
        }
        const oscillation = increases <= w * rho ? 1 : 0;
        const noImprovement = (1 - reducedLastCheck[r]) * (lossBestLastCheck[r] >= lossBest[r] ? 1 : 0);
        reduce[p] = Math.max(oscillation, noImprovement) > 0 ? 1 : 0;
        reducedNow[r] = reduce[p];
      });
      reducedLastCheck = reducedNow;
      lossBestLastCheck = lossBest.slice();
      if (reduce.some((v) => v)) {
        active.forEach((r, p) => {
          if (reduce[p]) stepSize[r] /= 2;
        });
        eta?.dispose();
        eta = null;
        const m = rowMask(reduce);
        const xr = selectRows(m, s.xBest, s.xAdv);
        const gr = selectRows(m, s.gradBest, s.grad);
        tf.dispose([m, s.xAdv, s.grad]);
        s.xAdv = xr;
        s.grad = gr;
      }
    }
  }
  eta?.dispose();
  // assemble the per-row outputs: the rows still in the run, then those that left it
  let xBest: tf.Tensor4D;
  if (left.length === 0) {
    xBest = tf.clone(t().xBest);
    xBestAdv ??= tf.clone(start);
  } else {
    const where = new Int32Array(n);
    active.forEach((r, p) => (where[r] = p));
    let offset = active.length;
    for (const l of left) {
      l.rows.forEach((r, j) => (where[r] = offset + j));
      offset += l.rows.length;
    }
    const mapping = tf.tensor1d(where, 'int32');
    const advs = left.map((l) => l.adv);
    xBest = tf.tidy(() => tf.gather(tf.concat([t().xBest, ...advs], 0), mapping) as tf.Tensor4D);
    // never-fooled rows keep the start as their "last misclassified" point, as without stopWhenFooled
    const startRows = tf.tidy(() => tf.gather(start, tf.tensor1d(active, 'int32')) as tf.Tensor4D);
    xBestAdv = tf.tidy(() => tf.gather(tf.concat([startRows, ...advs], 0), mapping) as tf.Tensor4D);
    tf.dispose([mapping, startRows, ...advs]);
  }
  state.dispose();
  const fooled = Uint8Array.from(acc, (v) => 1 - v);
  return { xBest, xBestAdv, fooled, lossBest, marginBest, predictedBest };
}

/** APGD on CE or DLR; see the file comment. Restart r draws its start from deriveSeed(seed, 'attack-start', r). */
export function apgd(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: ApgdOptions): tf.Tensor4D {
  return apgdReport(model, x, y, seed, options).adv;
}

/**
 * APGD with its per-row report (AutoAttack's APGD-CE / APGD-DLR stages). With `run.stopWhenFooled` a
 * fooled row stops at its first misclassified iterate (the other rows are unaffected).
 */
export function apgdReport(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: ApgdOptions,
  run: ApgdRunOptions = {},
): AttackReport {
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
    const result = apgdSingleRun(model, xs, ys, start, eps, nIter, rho, perExampleLoss(loss), norm, eotIter, run);
    start.dispose();
    return result;
  });
}

/**
 * The outer loop AA's APGD runs share (restarts of APGD-CE / DLR, targets of APGD-T): each pass attacks
 * only the points still classified correctly, and a point a pass fools keeps that pass's adversarial
 * example and leaves the loop. With `keepBestLoss`, a point no pass fools keeps the iterate of highest
 * loss over the passes (APGD's restarts); otherwise it stays at x (APGD-T). `pass` gets the gathered rows
 * and their clean logits and returns a run; it owns whatever else it creates; this disposes the run's
 * tensors. The report's margin is the lowest over x and every pass's iterates.
 */
export function attackStillRobust(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  passes: number,
  keepBestLoss: boolean,
  pass: (xs: tf.Tensor4D, ys: tf.Tensor1D, p: number, cleanLogits: tf.Tensor2D) => ApgdRunResult,
): AttackReport {
  const B = x.shape[0];
  const K = model.numClasses;
  const labels = y.dataSync() as Int32Array;
  const logits = tf.tidy(() => model.apply(x, 'eval'));
  const z = logits.dataSync();
  const { robust, margin, predicted } = rowOutcomes(z, labels, K);
  const bestLoss = new Float32Array(B).fill(-Infinity);
  let adv = tf.clone(x);
  try {
    for (let p = 0; p < passes; p++) {
      const idx: number[] = [];
      for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
      if (idx.length === 0) break;
      const idxT = tf.tensor1d(idx, 'int32');
      const xs = tf.gather(x, idxT) as tf.Tensor4D;
      const ys = tf.gather(y, idxT) as tf.Tensor1D;
      const ls = tf.gather(logits, idxT) as tf.Tensor2D;
      const run = pass(xs, ys, p, ls);
      // mapping into concat([adv, xBestAdv, xBest]): keep b, or take row j of the run's xBestAdv / xBest
      const mapping = new Int32Array(B);
      for (let b = 0; b < B; b++) mapping[b] = b;
      idx.forEach((b, j) => {
        if (run.marginBest[j] < margin[b]) {
          margin[b] = run.marginBest[j];
          predicted[b] = run.predictedBest[j];
        }
        if (run.fooled[j]) {
          robust[b] = 0;
          mapping[b] = B + j;
        } else if (keepBestLoss && run.lossBest[j] > bestLoss[b]) {
          bestLoss[b] = run.lossBest[j];
          mapping[b] = B + idx.length + j;
        }
      });
      const merged = tf.tidy(() => tf.gather(tf.concat([adv, run.xBestAdv, run.xBest], 0), tf.tensor1d(mapping, 'int32')) as tf.Tensor4D);
      tf.dispose([adv, idxT, xs, ys, ls, run.xBest, run.xBestAdv]);
      adv = merged;
    }
  } finally {
    logits.dispose();
  }
  return { adv, fooled: Uint8Array.from(robust, (v) => 1 - v), margin, predicted };
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
  return Object.assign(
    (model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: AttackOptions) => attack(model, x, y, seed, { ...options, rho }),
    { fixedObjective: attack.fixedObjective },
  );
}

/** The registry's 'apgd-ce' and 'apgd-dlr': the settings' eps, steps, restarts and norm (APGD chooses its own steps and start), and ρ. */
export const apgdCeEntry: NamedPart<Attack<AttackOptions>, ApgdSettings> = {
  name: 'apgd-ce',
  options: apgdOptionsSchema,
  create: (o) => withRho(apgdCe, o.rho),
};
export const apgdDlrEntry: NamedPart<Attack<AttackOptions>, ApgdSettings> = {
  name: 'apgd-dlr',
  options: apgdOptionsSchema,
  create: (o) => withRho(apgdDlr, o.rho),
};
