import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { marginAndClass, rowOutcomes, type ApgdNorm } from './apgd';
import type { AttackReport } from './types';
import { rankedClasses, TARGET_ROWS, targetCount } from './apgd-targeted';
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

/** Scratch arrays of the projection, grown on demand (FAB projects two points per row per iteration). */
let scratch = {
  brk: new Float64Array(0),
  sat: new Float64Array(0),
  slope: new Float64Array(0),
  dir: new Float64Array(0),
  room: new Float64Array(0),
  idx: new Int32Array(0),
};

/**
 * The minimal-‖d‖ step from t onto {z : w·z = b} with t + d in [0, 1] (per coordinate i where w_i ≠ 0).
 * Both norms reduce to a one-parameter family d_i(λ) moving each coordinate towards the side that
 * crosses the plane, saturating at the box: ℓ∞ d_i = ±min(λ, room_i), ℓ2 d_i = clamp(−λ·w_i, box);
 * w·d(λ) is piecewise linear and monotone in λ, with a breakpoint where each coordinate saturates.
 * If even the whole box cannot reach the plane, the corner (every coordinate saturated) is returned.
 */
export function projectOntoHyperplaneInBox(t: ArrayLike<number>, w: ArrayLike<number>, b: number, norm: ApgdNorm): Float64Array {
  const d = new Float64Array(t.length);
  projectInto(d, t, 0, w, 0, t.length, b, norm);
  return d;
}

/**
 * projectOntoHyperplaneInBox into `d` for the rows t[tOff, tOff + n) and w[wOff, wOff + n). The segment of
 * w·d(λ) that reaches the plane is found by selection (partitioning the breakpoints around pivots, O(n)
 * expected) instead of a full sort: the same λ = (c − Σ_{saturated} |w_i|·room_i) / Σ_{free} slope_i.
 */
function projectInto(
  d: Float64Array,
  t: ArrayLike<number>,
  tOff: number,
  w: ArrayLike<number>,
  wOff: number,
  n: number,
  b: number,
  norm: ApgdNorm,
): void {
  if (scratch.brk.length < n)
    scratch = {
      brk: new Float64Array(n),
      sat: new Float64Array(n),
      slope: new Float64Array(n),
      dir: new Float64Array(n),
      room: new Float64Array(n),
      idx: new Int32Array(n),
    };
  const { brk, sat, slope, dir, room, idx } = scratch;
  let wt = 0;
  for (let i = 0; i < n; i++) wt += w[wOff + i] * t[tOff + i];
  // orient the plane so that t lies on its positive side: we must decrease w·z by c = w·t − b ≥ 0
  const sgn = wt - b >= 0 ? 1 : -1;
  const c = sgn * (wt - b);
  d.fill(0, 0, n);
  // per coordinate: direction dir_i ∈ {−1, +1} that decreases w·z, room_i to the box, rate |w_i|
  // (ℓ∞: d_i = dir_i·min(λ, room_i), so w·d decreases by |w_i|·min(λ, room_i);
  //  ℓ2: d_i = dir_i·min(λ|w_i|, room_i), decreasing w·z by |w_i|·min(λ|w_i|, room_i))
  let m = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const wi = sgn * w[wOff + i];
    if (wi === 0 || (norm === 'l2' && Math.abs(wi) < 1e-8)) continue;
    const ti = t[tOff + i];
    dir[i] = wi > 0 ? -1 : 1;
    room[i] = wi > 0 ? ti : 1 - ti;
    const a = Math.abs(wi);
    slope[i] = norm === 'l2' ? a * a : a;
    brk[i] = norm === 'l2' ? room[i] / a : room[i];
    sat[i] = a * room[i];
    total += sat[i];
    idx[m++] = i;
  }
  if (c >= total) {
    for (let q = 0; q < m; q++) d[idx[q]] = dir[idx[q]] * room[idx[q]];
    return;
  }
  // the smallest breakpoint p with decrease(p) = Σ_{brk < p} sat + p·Σ_{brk ≥ p} slope ≥ c
  let lo = 0;
  let hi = m;
  let satAcc = 0; // Σ sat over coordinates saturated before the answer
  let slopeAcc = 0; // Σ slope over coordinates still free at the answer
  while (hi > lo) {
    const p = brk[idx[(lo + hi) >> 1]];
    let k = lo;
    let satBelow = 0;
    let slopeAtOrAbove = 0;
    for (let q = lo; q < hi; q++) {
      const e = idx[q];
      if (brk[e] < p) {
        idx[q] = idx[k];
        idx[k++] = e;
        satBelow += sat[e];
      } else slopeAtOrAbove += slope[e];
    }
    if (satAcc + satBelow + (slopeAcc + slopeAtOrAbove) * p >= c) {
      slopeAcc += slopeAtOrAbove;
      hi = k;
    } else {
      // the answer lies above p: the coordinates at p saturate too
      let e0 = k;
      let satAt = 0;
      for (let q = k; q < hi; q++) {
        const e = idx[q];
        if (brk[e] === p) {
          idx[q] = idx[e0];
          idx[e0++] = e;
          satAt += sat[e];
        }
      }
      satAcc += satBelow + satAt;
      lo = e0;
    }
  }
  const lambda = slopeAcc > 0 ? (c - satAcc) / slopeAcc : 0;
  for (let q = 0; q < m; q++) {
    const i = idx[q];
    const move = norm === 'l2' ? Math.min(lambda * Math.abs(w[wOff + i]), room[i]) : Math.min(lambda, room[i]);
    d[i] = dir[i] * move;
  }
}

function normOf(v: ArrayLike<number>, off: number, len: number, norm: ApgdNorm): number {
  let s = 0;
  for (let i = off; i < off + len; i++) s = norm === 'l2' ? s + v[i] * v[i] : Math.max(s, Math.abs(v[i]));
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** ‖a_row − b_row‖ of row r (both [n, size], row-major). */
function rowDistance(a: Float32Array, b: Float32Array, r: number, size: number, norm: ApgdNorm): number {
  let s = 0;
  for (let i = r * size; i < (r + 1) * size; i++) {
    const v = a[i] - b[i];
    s = norm === 'l2' ? s + v * v : Math.max(s, Math.abs(v));
  }
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** e_t − e_y per row, [m, K]: what picks z_t − z_y out of the logits. */
function targetMinusLabel(y: tf.Tensor1D, t: tf.Tensor1D, k: number): tf.Tensor2D {
  return tf.tidy(() => tf.sub(tf.oneHot(t, k).toFloat(), tf.oneHot(y, k).toFloat()) as tf.Tensor2D);
}

/** z_t − z_y per example and its input gradient at x (eval mode); `pickDiff` = targetMinusLabel(y, t). */
function targetedDiffAndGrad(
  model: Model,
  x: Float32Array,
  shape: [number, number, number, number],
  pickDiff: tf.Tensor2D,
): { f: Float32Array; g: Float32Array } {
  let fT: tf.Tensor | undefined;
  const g = tf.tidy(() =>
    tf.grad((xx: tf.Tensor) => {
      const logits = model.apply(xx as tf.Tensor4D, 'eval');
      const diff = tf.sum(tf.mul(logits, pickDiff), 1);
      fT = tf.keep(diff);
      return tf.sum(diff);
    })(tf.tensor4d(x, shape)),
  );
  const out = { f: fT!.dataSync() as Float32Array, g: g.dataSync() as Float32Array };
  tf.dispose([g, fT!]);
  return out;
}

/** The logits at x (eval mode), read back. */
function logitsAt(model: Model, x: Float32Array, shape: [number, number, number, number]): Float32Array {
  return tf.tidy(() => model.apply(tf.tensor4d(x, shape), 'eval').dataSync() as Float32Array);
}

/** How one FAB run is carried out (AutoAttack's ensemble); the defaults are the plain attack. */
export interface FabRunOptions {
  /**
   * The threat model's radius: the run reports, per row, the lowest margin among the points it checks
   * (after each step) within this distance of x, and the class there.
   */
  readonly eps?: number;
  /**
   * With `eps`: a row leaves the run once it has an adversarial point within eps (all AutoAttack asks
   * of FAB-T); the others run unchanged. The reference keeps refining such points towards x.
   */
  readonly stopWhenFooled?: boolean;
}

export interface FabRunResult {
  /** The closest adversarial point per row (x where none was found). */
  readonly adv: Float32Array;
  readonly dist: Float64Array;
  /** See FabRunOptions.eps: +∞ / 0 where no checked point was within eps (or without eps). */
  readonly marginBest: Float32Array;
  readonly predictedBest: Int32Array;
}

/**
 * One targeted FAB run (exported for the reference cross-check); returns the closest adversarial point per example (x where none was found)
 * and its distance.
 */
export function fabSingleRun(
  model: Model,
  x: Float32Array,
  y: tf.Tensor1D,
  target: tf.Tensor1D,
  shape: [number, number, number, number],
  steps: number,
  norm: ApgdNorm,
  eta: number,
  beta: number,
  alphaMax: number,
  options: FabRunOptions = {},
): FabRunResult {
  const [n, h, w, c] = shape;
  const size = x.length / n;
  const k = model.numClasses;
  const labels = y.dataSync() as Int32Array;
  const targets = target.dataSync() as Int32Array;
  const eps = options.eps ?? -1;
  const track = options.eps !== undefined;
  const stop = track && (options.stopWhenFooled ?? false);
  const x1 = Float32Array.from(x);
  const adv = Float32Array.from(x);
  const dist = new Float64Array(n).fill(1e10);
  const marginBest = new Float32Array(n).fill(Infinity);
  const predictedBest = new Int32Array(n);
  const d1 = new Float64Array(size);
  const d2 = new Float64Array(size);
  // the rows still iterated on; their x1 rows packed into `packed` when not all rows are
  let active = Int32Array.from({ length: n }, (_, i) => i);
  const packed = new Float32Array(n * size);
  let pickDiff = targetMinusLabel(y, target, k);
  const input = (): Float32Array => {
    if (active.length === n) return x1;
    active.forEach((r, a) => packed.set(x1.subarray(r * size, (r + 1) * size), a * size));
    return packed.subarray(0, active.length * size);
  };
  try {
    for (let it = 0; it < steps && active.length > 0; it++) {
      const m = active.length;
      const sub: [number, number, number, number] = [m, h, w, c];
      const { f, g } = targetedDiffAndGrad(model, input(), sub, pickDiff);
      for (let a = 0; a < m; a++) {
        const o = active[a] * size;
        let wx = 0;
        for (let i = 0; i < size; i++) wx += g[a * size + i] * x1[o + i];
        // the plane where the linearised z_t − z_y vanishes: w·z = w·x₁ − f(x₁)
        const b = wx - f[a];
        projectInto(d1, x1, o, g, a * size, size, b, norm);
        projectInto(d2, x, o, g, a * size, size, b, norm);
        const a1 = Math.max(normOf(d1, 0, size, norm), 1e-8);
        const a2 = Math.max(normOf(d2, 0, size, norm), 1e-8);
        const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), alphaMax);
        for (let i = 0; i < size; i++) {
          const v = (x1[o + i] + eta * d1[i]) * (1 - alpha) + (x[o + i] + d2[i] * eta) * alpha;
          x1[o + i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
      }
      const logits = logitsAt(model, input(), sub);
      let left = 0;
      for (let a = 0; a < m; a++) {
        const r = active[a];
        const o = r * size;
        const { margin, predicted } = marginAndClass(logits, a, k, labels[r]);
        const dd = predicted !== labels[r] || track ? rowDistance(x1, x, r, size, norm) : 0;
        if (track && dd <= eps && margin < marginBest[r]) {
          marginBest[r] = margin;
          predictedBest[r] = predicted;
        }
        if (predicted === labels[r]) continue;
        if (dd < dist[r]) {
          dist[r] = dd;
          adv.set(x1.subarray(o, o + size), o);
        }
        for (let i = 0; i < size; i++) x1[o + i] = x[o + i] + (x1[o + i] - x[o + i]) * beta;
        if (stop && dist[r] <= eps) left++;
      }
      if (left > 0) {
        active = active.filter((r) => dist[r] > eps);
        pickDiff.dispose();
        pickDiff = tf.tidy(() =>
          targetMinusLabel(
            tf.tensor1d(
              Int32Array.from(active, (r) => labels[r]),
              'int32',
            ),
            tf.tensor1d(
              Int32Array.from(active, (r) => targets[r]),
              'int32',
            ),
            k,
          ),
        );
      }
    }
  } finally {
    pickDiff.dispose();
  }
  return { adv, dist, marginBest, predictedBest };
}

export function fabTargeted(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: FabOptions): tf.Tensor4D {
  return fabTargetedReport(model, x, y, seed, options).adv;
}

/**
 * FAB-T with its per-row report (AutoAttack's FAB-T stage). The targets come from the clean logits,
 * computed once. With `stopWhenFooled` a row leaves a run once it has an adversarial point within ε, and
 * the targets run together as rows (target, point) of batches of at most TARGET_ROWS rows: FAB is
 * deterministic and each row's run is its own, so a point's outcome (its first target, in rank order,
 * that fools it) is the one the targets run one after the other give, with each op dispatched once per
 * batch instead of once per target.
 */
export function fabTargetedReport(
  model: Model,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seed: number,
  options: FabOptions,
  run: { stopWhenFooled?: boolean } = {},
): AttackReport {
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
  const K = model.numClasses;
  const size = h * w * c;
  const xs = x.dataSync() as Float32Array;
  const labels = y.dataSync() as Int32Array;
  const z = tf.tidy(() => model.apply(x, 'eval').dataSync());
  const { robust, margin, predicted } = rowOutcomes(z, labels, K);
  const order = Array.from({ length: B }, (_, b) => rankedClasses(z, b, K));
  const out = Float32Array.from(xs);
  for (let j0 = 0; j0 < nTargets;) {
    const idx: number[] = [];
    for (let b = 0; b < B; b++) if (robust[b]) idx.push(b);
    if (idx.length === 0) break;
    const perPass = run.stopWhenFooled ? Math.max(1, Math.floor(TARGET_ROWS / idx.length)) : 1;
    const js = Array.from({ length: Math.min(perPass, nTargets - j0) }, (_, i) => j0 + i);
    j0 += js.length;
    const rowPoint = js.flatMap(() => idx);
    const rowOrder = js.flatMap((j) => idx.map(() => j));
    const rows = rowPoint.length;
    const sub = new Float32Array(rows * size);
    rowPoint.forEach((b, r) => sub.set(xs.subarray(b * size, (b + 1) * size), r * size));
    const shape: [number, number, number, number] = [rows, h, w, c];
    const ys = tf.tensor1d(
      rowPoint.map((b) => labels[b]),
      'int32',
    );
    const target = tf.tensor1d(
      rowPoint.map((b, r) => order[b][rowOrder[r] + 1]),
      'int32',
    );
    try {
      const r = fabSingleRun(model, sub, ys, target, shape, steps, norm, eta, beta, alphaMax, { eps, stopWhenFooled: run.stopWhenFooled });
      // the reference's check of each run's points (AutoAttack: acc_curr)
      const logits = logitsAt(model, r.adv, shape);
      const first = new Map<number, number>();
      for (let row = 0; row < rows; row++) {
        const b = rowPoint[row];
        const at = marginAndClass(logits, row, K, labels[b]);
        for (const [mg, pr] of [
          [r.marginBest[row], r.predictedBest[row]],
          r.dist[row] <= eps ? [at.margin, at.predicted] : [Infinity, 0],
        ]) {
          if (mg < margin[b]) {
            margin[b] = mg;
            predicted[b] = pr;
          }
        }
        if (at.predicted !== labels[b] && r.dist[row] <= eps && !first.has(b)) first.set(b, row);
      }
      for (const [b, row] of first) {
        robust[b] = 0;
        out.set(r.adv.subarray(row * size, (row + 1) * size), b * size);
      }
    } finally {
      tf.dispose([ys, target]);
    }
  }
  return { adv: tf.tensor4d(out, x.shape), fooled: Uint8Array.from(robust, (v) => 1 - v), margin, predicted };
}
