import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import type { ApgdNorm } from './apgd';
import { classAtRank, targetCount } from './apgd-targeted';
import { checkAttackInputs, checkInteger, checkNonNegative } from './validate';

/**
 * FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein, ICML 2020, "Minimally distorted
 * adversarial examples with a fast adaptive boundary attack"), ℓ∞ and ℓ2, as AutoAttack's standard suite
 * runs it (FABAttack_PT with targeted=True, n_restarts=1, so no random start: FAB-T is deterministic).
 * Written from the paper and fab_base.py / fab_projections.py:
 *  - for target rank r = 2 .. n_targets + 1 (the clean logits' r-th class t), on the still-robust examples:
 *  - linearise f(z) = z_t − z_y at the iterate x₁: the boundary is the hyperplane w·z = b with
 *    w = ∇f(x₁), b = w·x₁ − f(x₁);
 *  - d₁, d₂ = the minimal-ℓp steps from x₁ and from the original x onto that hyperplane within the box
 *    [0, 1] (if the box cannot reach it, the box corner nearest to it);
 *  - x₁ ← clamp((x₁ + η·d₁)(1 − α) + (x + η·d₂)·α, 0, 1), α = min(‖d₁‖/(‖d₁‖ + ‖d₂‖), α_max),
 *    η = 1.05, α_max = 0.1;
 *  - if x₁ is misclassified: keep it if it is the closest to x so far, then x₁ ← x + β(x₁ − x), β = 0.9;
 *  - an example counts as fooled if its closest adversarial point is within ε.
 * Returns that point for fooled examples and x for the others.
 */
export interface FabOptions {
  readonly eps: number;
  /** Iterations per target; default 100. */
  readonly steps?: number;
  /** Target classes; default 9, capped at K − 1. */
  readonly targets?: number;
  readonly norm?: ApgdNorm;
  /** Overshoot η; default 1.05. */
  readonly eta?: number;
  /** Backward step β; default 0.9. */
  readonly beta?: number;
  /** Largest bias towards x, α_max; default 0.1. */
  readonly alphaMax?: number;
}

/**
 * The minimal-‖d‖ step from t onto {z : w·z = b} with t + d in [0, 1] (per coordinate i where w_i ≠ 0).
 * Both norms reduce to a one-parameter family d_i(λ) moving each coordinate towards the side that
 * crosses the plane, saturating at the box: ℓ∞ d_i = ±min(λ, room_i), ℓ2 d_i = clamp(−λ·w_i, box);
 * w·d(λ) is piecewise linear and monotone in λ, so sorting the saturation points gives λ exactly.
 * If even the whole box cannot reach the plane, the corner (every coordinate saturated) is returned.
 */
export function projectOntoHyperplaneInBox(t: Float64Array, w: Float64Array, b: number, norm: ApgdNorm): Float64Array {
  const n = t.length;
  let wt = 0;
  for (let i = 0; i < n; i++) wt += w[i] * t[i];
  // orient the plane so that t lies on its positive side: we must decrease w·z by c = w·t − b ≥ 0
  const sgn = wt - b >= 0 ? 1 : -1;
  const c = sgn * (wt - b);
  const d = new Float64Array(n);
  // per coordinate: direction dir_i ∈ {−1, +1} that decreases w·z, room_i to the box, rate |w_i|
  // (ℓ∞: d_i = dir_i·min(λ, room_i), so w·d decreases by |w_i|·min(λ, room_i);
  //  ℓ2: d_i = dir_i·min(λ|w_i|, room_i), decreasing w·z by |w_i|·min(λ|w_i|, room_i))
  const idx: number[] = [];
  const brk = new Float64Array(n); // λ at which coordinate i saturates
  const slope = new Float64Array(n); // d(decrease)/dλ before saturation
  const dir = new Float64Array(n);
  const room = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const wi = sgn * w[i];
    if (wi === 0 || (norm === 'l2' && Math.abs(wi) < 1e-8)) continue;
    dir[i] = wi > 0 ? -1 : 1;
    room[i] = wi > 0 ? t[i] : 1 - t[i];
    const a = Math.abs(wi);
    slope[i] = norm === 'l2' ? a * a : a;
    brk[i] = norm === 'l2' ? room[i] / a : room[i];
    total += a * room[i];
    idx.push(i);
  }
  if (c >= total) {
    for (const i of idx) d[i] = dir[i] * room[i];
    return d;
  }
  idx.sort((p, q) => brk[p] - brk[q]);
  // walk the breakpoints: decrease(λ) = Σ_saturated |w_i|·room_i + λ·Σ_free slope_i
  let saturated = 0;
  let freeSlope = 0;
  for (const i of idx) freeSlope += slope[i];
  let lambda = 0;
  let k = 0;
  for (; k < idx.length; k++) {
    const i = idx[k];
    const atBreak = saturated + freeSlope * brk[i];
    if (atBreak >= c) break;
    saturated += Math.abs(sgn * w[i]) * room[i];
    freeSlope -= slope[i];
  }
  lambda = freeSlope > 0 ? (c - saturated) / freeSlope : 0;
  for (const i of idx) {
    const a = Math.abs(sgn * w[i]);
    const move = norm === 'l2' ? Math.min(lambda * a, room[i]) : Math.min(lambda, room[i]);
    d[i] = dir[i] * move;
  }
  return d;
}

function normOf(v: ArrayLike<number>, off: number, len: number, norm: ApgdNorm): number {
  let s = 0;
  for (let i = off; i < off + len; i++) s = norm === 'l2' ? s + v[i] * v[i] : Math.max(s, Math.abs(v[i]));
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** z_t − z_y per example and its input gradient at x (eval mode). */
function targetedDiffAndGrad(model: Model, x: Float32Array, shape: [number, number, number, number], y: tf.Tensor1D, t: tf.Tensor1D): { f: Float32Array; g: Float32Array } {
  const k = model.numClasses;
  let fT: tf.Tensor | undefined;
  const g = tf.tidy(() =>
    tf.grad((xx: tf.Tensor) => {
      const logits = model.apply(xx as tf.Tensor4D, 'eval');
      const diff = tf.sum(tf.mul(logits, tf.sub(tf.oneHot(t, k).toFloat(), tf.oneHot(y, k).toFloat())), 1);
      fT = tf.keep(diff);
      return tf.sum(diff);
    })(tf.tensor4d(x, shape)),
  );
  const out = { f: fT!.dataSync() as Float32Array, g: g.dataSync() as Float32Array };
  tf.dispose([g, fT!]);
  return out;
}

function predict(model: Model, x: Float32Array, shape: [number, number, number, number]): Int32Array {
  return tf.tidy(() => tf.argMax(model.apply(tf.tensor4d(x, shape), 'eval'), 1).dataSync() as Int32Array);
}

/** One targeted FAB run (exported for the reference cross-check); returns the closest adversarial point per example (x where none was found) and its distance. */
export function fabSingleRun(model: Model, x: Float32Array, y: tf.Tensor1D, target: tf.Tensor1D, shape: [number, number, number, number], steps: number, norm: ApgdNorm, eta: number, beta: number, alphaMax: number): { adv: Float32Array; dist: Float64Array } {
  const [n, , , ] = shape;
  const size = x.length / n;
  const labels = y.dataSync();
  const x1 = Float32Array.from(x);
  const adv = Float32Array.from(x);
  const dist = new Float64Array(n).fill(1e10);
  const tRow = new Float64Array(size);
  const wRow = new Float64Array(size);
  for (let it = 0; it < steps; it++) {
    const { f, g } = targetedDiffAndGrad(model, x1, shape, y, target);
    for (let e = 0; e < n; e++) {
      const o = e * size;
      let wx = 0;
      for (let i = 0; i < size; i++) {
        wRow[i] = g[o + i];
        tRow[i] = x1[o + i];
        wx += wRow[i] * tRow[i];
      }
      // the plane where the linearised z_t − z_y vanishes: w·z = w·x₁ − f(x₁)
      const b = wx - f[e];
      const d1 = projectOntoHyperplaneInBox(tRow, wRow, b, norm);
      for (let i = 0; i < size; i++) tRow[i] = x[o + i];
      const d2 = projectOntoHyperplaneInBox(tRow, wRow, b, norm);
      const a1 = Math.max(normOf(d1, 0, size, norm), 1e-8);
      const a2 = Math.max(normOf(d2, 0, size, norm), 1e-8);
      const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), alphaMax);
      for (let i = 0; i < size; i++) {
        const v = (x1[o + i] + eta * d1[i]) * (1 - alpha) + (x[o + i] + d2[i] * eta) * alpha;
        x1[o + i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
    const pred = predict(model, x1, shape);
    for (let e = 0; e < n; e++) {
      if (pred[e] === labels[e]) continue;
      const o = e * size;
      let s = 0;
      for (let i = 0; i < size; i++) {
        const v = x1[o + i] - x[o + i];
        s = norm === 'l2' ? s + v * v : Math.max(s, Math.abs(v));
      }
      const dd = norm === 'l2' ? Math.sqrt(s) : s;
      if (dd < dist[e]) {
        dist[e] = dd;
        adv.set(x1.subarray(o, o + size), o);
      }
      for (let i = 0; i < size; i++) x1[o + i] = x[o + i] + (x1[o + i] - x[o + i]) * beta;
    }
  }
  return { adv, dist };
}

export function fabTargeted(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: FabOptions): tf.Tensor4D {
  void seed; // FAB-T without restarts draws no random numbers (AutoAttack's standard setting)
  const name = 'fab-t';
  checkAttackInputs(name, model, x, y);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const steps = checkInteger(name, 'steps', options.steps ?? 100, 1);
  const nTargets = targetCount(checkInteger(name, 'targets', options.targets ?? 9, 1), model.numClasses);
  const norm = options.norm ?? 'linf';
  const eta = checkNonNegative(name, 'eta', options.eta ?? 1.05);
  const beta = checkNonNegative(name, 'beta', options.beta ?? 0.9);
  const alphaMax = checkNonNegative(name, 'alphaMax', options.alphaMax ?? 0.1);
  const [B, h, w, c] = x.shape;
  const size = h * w * c;
  const xs = x.dataSync() as Float32Array;
  const labels = y.dataSync() as Int32Array;
  const robust = tf.tidy(() => Uint8Array.from(tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y).dataSync()));
  const out = Float32Array.from(xs);
  for (let j = 0; j < nTargets; j++) {
    const idx: number[] = [];
    for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
    if (idx.length === 0) break;
    const sub = new Float32Array(idx.length * size);
    idx.forEach((b, a) => sub.set(xs.subarray(b * size, (b + 1) * size), a * size));
    const shape: [number, number, number, number] = [idx.length, h, w, c];
    const ys = tf.tensor1d(idx.map((b) => labels[b]), 'int32');
    const target = tf.tidy(() => classAtRank(model.apply(tf.tensor4d(sub, shape), 'eval'), j + 2));
    const run = fabSingleRun(model, sub, ys, target, shape, steps, norm, eta, beta, alphaMax);
    const pred = predict(model, run.adv, shape);
    idx.forEach((b, a) => {
      if (pred[a] !== labels[b] && run.dist[a] <= eps) {
        robust[b] = 0;
        out.set(run.adv.subarray(a * size, (a + 1) * size), b * size);
      }
    });
    tf.dispose([ys, target]);
  }
  return tf.tensor4d(out, x.shape);
}
