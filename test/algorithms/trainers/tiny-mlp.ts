/**
 * A tiny fixed 2-layer MLP (flatten → dense → ReLU → dense) as an atflow Model, plus an independent
 * plain-JS implementation of its forward pass and analytic backward pass: the reference the trainer
 * tests compare against. No BatchNorm, so 'train' and 'eval' compute the same function; the model
 * records the mode of every call so tests can check which passes ran in which mode.
 */
import * as tf from '@tensorflow/tfjs';
import type { Mode, Model, NamedVariable } from '../../../src/core/model';

export interface MlpWeights {
  /** [D, H] row-major */
  readonly w1: number[];
  readonly b1: number[];
  /** [H, K] row-major */
  readonly w2: number[];
  readonly b2: number[];
  readonly D: number;
  readonly H: number;
  readonly K: number;
}

/** Deterministic pseudo-random weights without any library RNG (a fixed LCG), scaled 1/√fan_in. */
export function fixedWeights(D: number, H: number, K: number, salt = 1): MlpWeights {
  let s = 12345 + salt * 7919;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const arr = (n: number, scale: number) => Array.from({ length: n }, () => Math.round(next() * 2 * scale * 1e4) / 1e4);
  return { w1: arr(D * H, 2 / Math.sqrt(D)), b1: arr(H, 0.2), w2: arr(H * K, 2 / Math.sqrt(H)), b2: arr(K, 0.2), D, H, K };
}

export interface RecordingModel extends Model {
  readonly calls: { mode: Mode; batch: number }[];
}

let instance = 0;
export function tinyMlp(w: MlpWeights, inputShape: [number, number, number]): RecordingModel {
  const id = instance++;
  const v = (name: string, values: number[], shape: number[]): NamedVariable => {
    const init = tf.tensor(values, shape, 'float32');
    const variable = tf.variable(init, true, `tiny${id}.${name}`);
    init.dispose(); // the variable keeps the data; the initial tensor would otherwise stay registered
    return { name, variable };
  };
  const parameters = [
    v('fc1.weight', w.w1, [w.D, w.H]),
    v('fc1.bias', w.b1, [w.H]),
    v('fc2.weight', w.w2, [w.H, w.K]),
    v('fc2.bias', w.b2, [w.K]),
  ];
  const calls: { mode: Mode; batch: number }[] = [];
  return {
    name: 'tiny-mlp',
    numClasses: w.K,
    inputShape,
    parameters,
    buffers: [],
    calls,
    apply(x: tf.Tensor4D, mode: Mode): tf.Tensor2D {
      calls.push({ mode, batch: x.shape[0] });
      return tf.tidy(() => {
        const flat = tf.reshape(x, [x.shape[0], w.D]);
        const h = tf.relu(tf.add(tf.matMul(flat, parameters[0].variable), parameters[1].variable));
        return tf.add(tf.matMul(h, parameters[2].variable), parameters[3].variable) as tf.Tensor2D;
      });
    },
    dispose() {
      for (const p of parameters) p.variable.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The naive reference: plain JS arrays, float64, analytic gradients.

export interface Forward {
  x: number[][];
  z1: number[][];
  a1: number[][];
  logits: number[][];
}

export function naiveForward(w: MlpWeights, x: number[][]): Forward {
  const z1 = x.map((xi) => Array.from({ length: w.H }, (_, h) => w.b1[h] + xi.reduce((s, xd, d) => s + xd * w.w1[d * w.H + h], 0)));
  const a1 = z1.map((r) => r.map((z) => Math.max(0, z)));
  const logits = a1.map((ai) => Array.from({ length: w.K }, (_, k) => w.b2[k] + ai.reduce((s, ah, h) => s + ah * w.w2[h * w.K + k], 0)));
  return { x, z1, a1, logits };
}

export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export interface Grads {
  w1: number[];
  b1: number[];
  w2: number[];
  b2: number[];
  x: number[][];
}

/** Backprop of dL/dlogits through the MLP: parameter and input gradients. */
export function naiveBackward(w: MlpWeights, f: Forward, dlogits: number[][]): Grads {
  const g: Grads = {
    w1: new Array(w.D * w.H).fill(0),
    b1: new Array(w.H).fill(0),
    w2: new Array(w.H * w.K).fill(0),
    b2: new Array(w.K).fill(0),
    x: [],
  };
  f.x.forEach((xi, i) => {
    const dz2 = dlogits[i];
    for (let k = 0; k < w.K; k++) {
      g.b2[k] += dz2[k];
      for (let h = 0; h < w.H; h++) g.w2[h * w.K + k] += f.a1[i][h] * dz2[k];
    }
    const dz1 = Array.from({ length: w.H }, (_, h) => (f.z1[i][h] > 0 ? dz2.reduce((s, d, k) => s + d * w.w2[h * w.K + k], 0) : 0));
    for (let h = 0; h < w.H; h++) {
      g.b1[h] += dz1[h];
      for (let d = 0; d < w.D; d++) g.w1[d * w.H + h] += xi[d] * dz1[h];
    }
    g.x.push(Array.from({ length: w.D }, (_, d) => dz1.reduce((s, dz, h) => s + dz * w.w1[d * w.H + h], 0)));
  });
  return g;
}

export function addGrads(a: Grads, b: Grads): Grads {
  const add = (u: number[], v: number[]) => u.map((x, i) => x + v[i]);
  return { w1: add(a.w1, b.w1), b1: add(a.b1, b.b1), w2: add(a.w2, b.w2), b2: add(a.b2, b.b2), x: a.x };
}

/** CE_mean and its gradient w.r.t. the logits: (softmax − onehot)/B. */
export function naiveCe(logits: number[][], y: number[]): { value: number; dlogits: number[][] } {
  const B = logits.length;
  let value = 0;
  const dlogits = logits.map((z, i) => {
    const p = softmax(z);
    value -= Math.log(p[y[i]]) / B;
    return p.map((pk, k) => (pk - (k === y[i] ? 1 : 0)) / B);
  });
  return { value, dlogits };
}

/** scale·KL_sum(p(nat) ‖ p(adv)) and its gradients w.r.t. both logits (target not detached). */
export function naiveKl(nat: number[][], adv: number[][], scale: number): { value: number; dNat: number[][]; dAdv: number[][] } {
  let value = 0;
  const dNat: number[][] = [];
  const dAdv: number[][] = [];
  nat.forEach((zn, i) => {
    const p = softmax(zn);
    const q = softmax(adv[i]);
    const L = p.map((pk, k) => Math.log(pk) - Math.log(q[k]));
    const kl = p.reduce((s, pk, k) => s + pk * L[k], 0);
    value += scale * kl;
    dNat.push(p.map((pj, j) => scale * pj * (L[j] - kl)));
    dAdv.push(q.map((qj, j) => scale * (qj - p[j])));
  });
  return { value, dNat, dAdv };
}

/** w·mean_{B×K}(softmax(z) − t)², its per-example shares w·mean_k, and its gradient w.r.t. z. */
export function naiveTe(
  logits: number[][],
  target: number[][],
  weight: number,
): { value: number; perExample: number[]; dlogits: number[][] } {
  const B = logits.length;
  const K = logits[0].length;
  let value = 0;
  const perExample: number[] = [];
  const dlogits = logits.map((z, i) => {
    const s = softmax(z);
    const r = s.map((sk, k) => sk - target[i][k]);
    const sq = r.reduce((a, v) => a + v * v, 0);
    value += (weight * sq) / (B * K);
    perExample.push((weight * sq) / K);
    const c = s.reduce((a, sk, k) => a + sk * r[k], 0);
    return s.map((sj, j) => ((2 * weight) / (B * K)) * (sj * r[j] - sj * c));
  });
  return { value, perExample, dlogits };
}

export function sumLists(a: number[][], b: number[][]): number[][] {
  return a.map((r, i) => r.map((v, k) => v + b[i][k]));
}

export function toRows(t: tf.Tensor): number[][] {
  const arr = Array.from(t.dataSync());
  const B = t.shape[0];
  const n = arr.length / B;
  return Array.from({ length: B }, (_, i) => arr.slice(i * n, (i + 1) * n));
}
