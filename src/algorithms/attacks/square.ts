import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { deriveSeed, Rng } from '../../core/rng';
import { marginAndClass, type ApgdNorm } from './apgd';
import type { AttackReport } from './types';
import { checkAttackInputs, checkInteger, checkNonNegative } from './validate';

/**
 * Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), the score-based attack of
 * AutoAttack's standard suite, ℓ∞ and ℓ2, untargeted, margin loss z_y − max_{j≠y} z_j. Written from the
 * paper and AutoAttack's square.py (SquareAttack.attack_single_run, resc_schedule=False):
 *  - ℓ∞ start: x + ε·s with one random sign per (example, channel, column) (vertical stripes);
 *    each iteration adds ±2ε (one sign per channel) on one s×s window, projects onto the ε-box and [0, 1];
 *  - ℓ2 start: a 5×5 grid of ±η(s) blocks (η the paper's two-part "mass at the centre" pattern),
 *    scaled to ℓ2 norm ε; each iteration moves the perturbation mass of a second window into a new
 *    ±η(s) block on the first window, keeping ‖δ‖₂ = ε;
 *  - window side s = round(√(p·H·W)) with p = p_init halved at iterations 10, 50, 200, 500, 1000,
 *    2000, 4000, 6000, 8000 (ℓ2: s ≥ 3 and odd);
 *  - a candidate is kept if it lowers the margin or misclassifies; an example stops once misclassified.
 * As in square.py, the window position and the ℓ∞ signs of an iteration are shared by the batch.
 * Randomness comes from new Rng(deriveSeed(seed, 'square')) (tfjs has no global seed).
 * Returns the first misclassifying point per example, x for the others.
 */
export interface SquareOptions {
  readonly eps: number;
  /** Queries (iterations) after the start; default 5,000 (AutoAttack). */
  readonly queries?: number;
  /** Default 0.8 (AutoAttack). */
  readonly pInit?: number;
  /** Default 'linf'. */
  readonly norm?: ApgdNorm;
}

/** The fraction p of pixels a window covers at iteration `it` (square.py p_selection, no rescaling). */
export function squareP(pInit: number, it: number): number {
  const bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let halvings = 0;
  for (const b of bounds) if (it > b) halvings += 1;
  return pInit / 2 ** halvings;
}

interface Dims {
  h: number;
  w: number;
  c: number;
  size: number;
}

/** Margins z_y − max_{j≠y} z_j of `count` images stored back to back in `images`, and the classes predicted. */
function margins(
  model: Model,
  images: Float32Array,
  labels: Int32Array,
  count: number,
  d: Dims,
): { margin: Float32Array; predicted: Int32Array } {
  const logits = tf.tidy(() => model.apply(tf.tensor4d(images.subarray(0, count * d.size), [count, d.h, d.w, d.c]), 'eval').dataSync());
  const k = logits.length / count;
  const margin = new Float32Array(count);
  const predicted = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const m = marginAndClass(logits, i, k, labels[i]);
    margin[i] = m.margin;
    predicted[i] = m.predicted;
  }
  return { margin, predicted };
}

/** square.py eta_rectangles: an rows×cols block of nested rectangles weighted 1/(r+1)², unit ℓ2 norm. */
function etaRectangles(rows: number, cols: number): Float64Array {
  const delta = new Float64Array(rows * cols);
  const rc = Math.floor(rows / 2) + 1;
  const cc = Math.floor(cols / 2) + 1;
  let r0 = rc - 1;
  let c0 = cc - 1;
  for (let k = 0; k < Math.max(rc, cc); k++) {
    for (let i = Math.max(r0, 0); i < Math.min(r0 + 2 * k + 1, rows); i++)
      for (let j = Math.max(c0, 0); j < Math.min(c0 + 2 * k + 1, cols); j++) delta[i * cols + j] += 1 / (k + 1) ** 2;
    r0 -= 1;
    c0 -= 1;
  }
  return normalized(delta);
}

function normalized(v: Float64Array): Float64Array {
  let n = 0;
  for (const a of v) n += a * a;
  n = Math.sqrt(n);
  return v.map((a) => a / n);
}

/** square.py eta(s): the upper half +η, the lower half −η, unit ℓ2 norm, transposed with probability ½. */
function eta(s: number, rng: Rng): Float64Array {
  const half = Math.floor(s / 2);
  const top = etaRectangles(half, s);
  const bottom = etaRectangles(s - half, s);
  const delta = new Float64Array(s * s);
  delta.set(top, 0);
  for (let i = 0; i < bottom.length; i++) delta[half * s + i] = -bottom[i];
  const out = normalized(delta);
  if (rng.uniform() > 0.5) {
    const t = new Float64Array(s * s);
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = out[i * s + j];
    return t;
  }
  return out;
}

const sign = (rng: Rng): number => (rng.uniform() < 0.5 ? -1 : 1);
const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

/** ‖row‖₂ of image i. */
function l2Of(a: Float32Array, i: number, size: number): number {
  let n = 0;
  for (let k = i * size; k < (i + 1) * size; k++) n += a[k] * a[k];
  return Math.sqrt(n);
}

/**
 * One Square run on n images; returns the best point per image (the first misclassifying one, else the
 * lowest-margin one), its margin (the lowest margin Square evaluated: a query is kept iff it lowers it or
 * misclassifies) and the class predicted there.
 */
function squareSingleRun(
  model: Model,
  x: Float32Array,
  y: Int32Array,
  n: number,
  d: Dims,
  eps: number,
  queries: number,
  pInit: number,
  norm: ApgdNorm,
  rng: Rng,
): { xBest: Float32Array; lossMin: Float32Array; predicted: Int32Array } {
  const { h, w, c, size } = d;
  const xBest = new Float32Array(n * size);
  if (norm === 'linf') {
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++)
        for (let j = 0; j < w; j++) {
          const s = sign(rng);
          for (let i = 0; i < h; i++) {
            const k = b * size + (i * w + j) * c + ch;
            xBest[k] = clamp01(x[k] + eps * s);
          }
        }
  } else {
    const s = Math.floor(h / 5);
    const sp = Math.floor((h - 5 * s) / 2);
    const delta = new Float32Array(n * size);
    for (let gi = 0, vh = sp; gi < Math.floor(h / s); gi++, vh += s)
      for (let gj = 0, vw = sp; gj < Math.floor(w / s); gj++, vw += s) {
        const e = eta(s, rng);
        for (let b = 0; b < n; b++)
          for (let ch = 0; ch < c; ch++) {
            const sg = sign(rng);
            for (let i = 0; i < s; i++)
              for (let j = 0; j < s; j++)
                if (vh + i < h && vw + j < w) delta[b * size + ((vh + i) * w + vw + j) * c + ch] += e[i * s + j] * sg;
          }
      }
    for (let b = 0; b < n; b++) {
      const nb = l2Of(delta, b, size) + 1e-12;
      for (let k = b * size; k < (b + 1) * size; k++) xBest[k] = clamp01(x[k] + (delta[k] / nb) * eps);
    }
  }
  const startAt = margins(model, xBest, y, n, d);
  const marginMin = startAt.margin;
  const lossMin = marginMin.slice();
  const predicted = startAt.predicted;
  const nFeatures = h * w * c;
  const active = new Int32Array(n);
  const xNew = new Float32Array(n * size);
  const yActive = new Int32Array(n);
  for (let it = 0; it < queries; it++) {
    let m = 0;
    for (let b = 0; b < n; b++) if (marginMin[b] > 0) active[m++] = b;
    if (m === 0) break;
    const p = squareP(pInit, it);
    let s = Math.max(Math.round(Math.sqrt((p * nFeatures) / c)), norm === 'l2' ? 3 : 1);
    if (norm === 'l2' && s % 2 === 0) s += 1;
    s = Math.min(s, h, w);
    const vh = Math.floor(rng.uniform() * (h - s));
    const vw = Math.floor(rng.uniform() * (w - s));
    if (norm === 'linf') {
      const signs = Array.from({ length: c }, () => sign(rng));
      for (let a = 0; a < m; a++) {
        const b = active[a];
        yActive[a] = y[b];
        for (let k = 0; k < size; k++) xNew[a * size + k] = xBest[b * size + k];
        for (let i = vh; i < vh + s; i++)
          for (let j = vw; j < vw + s; j++)
            for (let ch = 0; ch < c; ch++) {
              const k = (i * w + j) * c + ch;
              const v = xBest[b * size + k] + 2 * eps * signs[ch];
              const x0 = x[b * size + k];
              xNew[a * size + k] = clamp01(Math.min(Math.max(v, x0 - eps), x0 + eps));
            }
      }
    } else {
      const vh2 = Math.floor(rng.uniform() * (h - s));
      const vw2 = Math.floor(rng.uniform() * (w - s));
      const e = eta(s, rng);
      const inW1 = (i: number, j: number) => i >= vh && i < vh + s && j >= vw && j < vw + s;
      const inW2 = (i: number, j: number) => i >= vh2 && i < vh2 + s && j >= vw2 && j < vw2 + s;
      const delta = new Float32Array(size);
      for (let a = 0; a < m; a++) {
        const b = active[a];
        yActive[a] = y[b];
        for (let k = 0; k < size; k++) delta[k] = xBest[b * size + k] - x[b * size + k];
        const normImage = l2Of(delta, 0, size);
        for (let ch = 0; ch < c; ch++) {
          let win1 = 0;
          let windows = 0;
          for (let i = 0; i < h; i++)
            for (let j = 0; j < w; j++) {
              const v = delta[(i * w + j) * c + ch];
              if (inW1(i, j)) win1 += v * v;
              if (inW1(i, j) || inW2(i, j)) windows += v * v;
            }
          win1 = Math.sqrt(win1);
          const sg = sign(rng);
          const block = new Float64Array(s * s);
          let nb = 0;
          for (let i = 0; i < s; i++)
            for (let j = 0; j < s; j++) {
              const v = e[i * s + j] * sg + delta[((vh + i) * w + vw + j) * c + ch] / (1e-12 + win1);
              block[i * s + j] = v;
              nb += v * v;
            }
          const scale = Math.sqrt(Math.max(eps * eps - normImage * normImage, 0) / c + windows) / (1e-12 + Math.sqrt(nb));
          for (let i = vh2; i < vh2 + s; i++) for (let j = vw2; j < vw2 + s; j++) delta[(i * w + j) * c + ch] = 0;
          for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) delta[((vh + i) * w + vw + j) * c + ch] = block[i * s + j] * scale;
        }
        const nd = l2Of(delta, 0, size) + 1e-12;
        for (let k = 0; k < size; k++) xNew[a * size + k] = clamp01(x[b * size + k] + (delta[k] / nd) * eps);
      }
    }
    const { margin, predicted: predictedNew } = margins(model, xNew, yActive, m, d);
    for (let a = 0; a < m; a++) {
      const b = active[a];
      let improved = margin[a] < lossMin[b];
      if (improved) {
        lossMin[b] = margin[a];
        predicted[b] = predictedNew[a];
      }
      improved = improved || margin[a] <= 0;
      if (improved) {
        marginMin[b] = margin[a];
        xBest.set(xNew.subarray(a * size, (a + 1) * size), b * size);
      }
    }
  }
  return { xBest, lossMin, predicted };
}

export function square(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: SquareOptions): tf.Tensor4D {
  return squareReport(model, x, y, seed, options).adv;
}

/** Square with its per-row report (AutoAttack's Square stage); the adversarial points are the same. */
export function squareReport(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: SquareOptions): AttackReport {
  const name = 'square';
  checkAttackInputs(name, model, x, y);
  const eps = checkNonNegative(name, 'eps', options.eps);
  const queries = checkInteger(name, 'queries', options.queries ?? 5000, 0);
  const pInit = checkNonNegative(name, 'pInit', options.pInit ?? 0.8);
  const norm = options.norm ?? 'linf';
  const [B, h, w, c] = x.shape;
  const d: Dims = { h, w, c, size: h * w * c };
  const xs = x.dataSync() as Float32Array;
  const ys = y.dataSync() as Int32Array;
  const clean = margins(model, xs, ys, B, d);
  const margin = clean.margin;
  const predicted = clean.predicted;
  const fooled = Uint8Array.from(predicted, (p, b) => (p === ys[b] ? 0 : 1));
  const idx: number[] = [];
  for (let b = 0; b < B; b++) if (!fooled[b]) idx.push(b);
  const adv = Float32Array.from(xs);
  if (idx.length > 0) {
    const xSub = new Float32Array(idx.length * d.size);
    const ySub = new Int32Array(idx.length);
    idx.forEach((b, a) => {
      xSub.set(xs.subarray(b * d.size, (b + 1) * d.size), a * d.size);
      ySub[a] = ys[b];
    });
    const run = squareSingleRun(model, xSub, ySub, idx.length, d, eps, queries, pInit, norm, new Rng(deriveSeed(seed, 'square')));
    const m = margins(model, run.xBest, ySub, idx.length, d);
    idx.forEach((b, a) => {
      for (const [mg, pr] of [
        [run.lossMin[a], run.predicted[a]],
        [m.margin[a], m.predicted[a]],
      ]) {
        if (mg < margin[b]) {
          margin[b] = mg;
          predicted[b] = pr;
        }
      }
      if (m.margin[a] <= 0) {
        fooled[b] = 1;
        adv.set(run.xBest.subarray(a * d.size, (a + 1) * d.size), b * d.size);
      }
    });
  }
  return { adv: tf.tensor4d(adv, x.shape), fooled, margin, predicted };
}
