import * as tf from '@tensorflow/tfjs';
import type { Model, Mode } from '../../../src/core/model';
import { Rng } from '../../../src/core/rng';

/**
 * Tiny models implementing the Model interface directly (tests must not depend on the model zoo).
 * Weights are written in the tests or drawn from a seeded Rng; layouts are tfjs' (dense [in, out]).
 */

/** logits = flatten(x)·W + b. W is [in][out] (plain arrays, as written in the test). */
export function denseModel(W: number[][], b: number[], inputShape: [number, number, number]): Model {
  const inDim = inputShape[0] * inputShape[1] * inputShape[2];
  if (W.length !== inDim) throw new Error(`W has ${W.length} rows, expected ${inDim}`);
  const k = b.length;
  const w = tf.variable(tf.tensor2d(W, [inDim, k]), true);
  const bias = tf.variable(tf.tensor1d(b), true);
  return {
    name: 'tiny-dense',
    numClasses: k,
    inputShape,
    apply(x: tf.Tensor4D, _mode: Mode): tf.Tensor2D {
      return tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], inDim]), w), bias) as tf.Tensor2D);
    },
    parameters: [
      { name: 'fc.weight', variable: w },
      { name: 'fc.bias', variable: bias },
    ],
    buffers: [],
    dispose() {
      w.dispose();
      bias.dispose();
    },
  };
}

/** logits = tanh(flatten(x)·W1 + b1)·W2 + b2, weights from plain arrays. */
export function mlpModel(
  W1: Float32Array,
  b1: Float32Array,
  W2: Float32Array,
  b2: Float32Array,
  inputShape: [number, number, number],
  hidden: number,
  numClasses: number,
): Model {
  const inDim = inputShape[0] * inputShape[1] * inputShape[2];
  const w1 = tf.variable(tf.tensor2d(W1, [inDim, hidden]), true);
  const c1 = tf.variable(tf.tensor1d(b1), true);
  const w2 = tf.variable(tf.tensor2d(W2, [hidden, numClasses]), true);
  const c2 = tf.variable(tf.tensor1d(b2), true);
  return {
    name: 'tiny-mlp',
    numClasses,
    inputShape,
    apply(x: tf.Tensor4D, _mode: Mode): tf.Tensor2D {
      return tf.tidy(() => {
        const h = tf.tanh(tf.add(tf.matMul(tf.reshape(x, [x.shape[0], inDim]), w1), c1));
        return tf.add(tf.matMul(h, w2), c2) as tf.Tensor2D;
      });
    },
    parameters: [
      { name: 'fc1.weight', variable: w1 },
      { name: 'fc1.bias', variable: c1 },
      { name: 'fc2.weight', variable: w2 },
      { name: 'fc2.bias', variable: c2 },
    ],
    buffers: [],
    dispose() {
      for (const v of [w1, c1, w2, c2]) v.dispose();
    },
  };
}

/**
 * A synthetic 4-class problem on 6×6×1 images: class k lights up quadrant k (value 0.6) over noise
 * U(0, 0.4). Deterministic given the seed.
 */
export function quadrantData(n: number, seed: number): { x: Float32Array; y: Int32Array; shape: [number, number, number, number] } {
  const rng = new Rng(seed);
  const H = 6;
  const x = new Float32Array(n * H * H);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(4);
    y[i] = k;
    for (let r = 0; r < H; r++)
      for (let c = 0; c < H; c++) {
        const q = (r < H / 2 ? 0 : 2) + (c < H / 2 ? 0 : 1);
        x[i * H * H + r * H + c] = 0.4 * rng.uniform() + (q === k ? 0.6 : 0);
      }
  }
  return { x, y, shape: [n, H, H, 1] };
}

/**
 * A "trained-ish" tanh MLP on quadrantData: full-batch gradient descent written in plain JS (no tfjs),
 * so it is the same model on every backend. Clean accuracy ends near 100% on the training points, yet
 * PGD at ε = 0.15 fools it on many of them.
 */
export function trainedQuadrantMlp(seed = 7, hidden = 8, steps = 150, lr = 0.5): Model {
  const data = quadrantData(64, seed);
  const D = 36;
  const K = 4;
  const rng = new Rng(seed + 1);
  const W1 = new Float32Array(D * hidden).map(() => rng.normal() * 0.3);
  const b1 = new Float32Array(hidden);
  const W2 = new Float32Array(hidden * K).map(() => rng.normal() * 0.3);
  const b2 = new Float32Array(K);
  const n = data.y.length;
  for (let s = 0; s < steps; s++) {
    const gW1 = new Float64Array(D * hidden);
    const gb1 = new Float64Array(hidden);
    const gW2 = new Float64Array(hidden * K);
    const gb2 = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const xi = data.x.subarray(i * D, (i + 1) * D);
      const h = new Float64Array(hidden);
      for (let j = 0; j < hidden; j++) {
        let a = b1[j];
        for (let d = 0; d < D; d++) a += xi[d] * W1[d * hidden + j];
        h[j] = Math.tanh(a);
      }
      const z = new Float64Array(K);
      for (let k = 0; k < K; k++) {
        let a = b2[k];
        for (let j = 0; j < hidden; j++) a += h[j] * W2[j * K + k];
        z[k] = a;
      }
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const se = e.reduce((a, v) => a + v, 0);
      const dz = e.map((v, k) => (v / se - (k === data.y[i] ? 1 : 0)) / n);
      const dh = new Float64Array(hidden);
      for (let k = 0; k < K; k++) {
        gb2[k] += dz[k];
        for (let j = 0; j < hidden; j++) {
          gW2[j * K + k] += h[j] * dz[k];
          dh[j] += W2[j * K + k] * dz[k];
        }
      }
      for (let j = 0; j < hidden; j++) {
        const da = dh[j] * (1 - h[j] * h[j]);
        gb1[j] += da;
        for (let d = 0; d < D; d++) gW1[d * hidden + j] += xi[d] * da;
      }
    }
    for (let i = 0; i < W1.length; i++) W1[i] -= lr * gW1[i];
    for (let i = 0; i < b1.length; i++) b1[i] -= lr * gb1[i];
    for (let i = 0; i < W2.length; i++) W2[i] -= lr * gW2[i];
    for (let i = 0; i < b2.length; i++) b2[i] -= lr * gb2[i];
  }
  return mlpModel(W1, b1, W2, b2, [6, 6, 1], hidden, K);
}
