import * as tf from '@tensorflow/tfjs';
import type { Model, NamedVariable } from '../../src/core/model';
import type { EpochRecord } from '../../src/core/records';
import {
  complexityMeasures,
  frobeniusNorms,
  norm21,
  pathNormSq,
  quantile,
  sharpness,
  spectralNorm,
  weightMatrices,
} from '../../src/analysis/complexity';
import { deriveSeed, Rng } from '../../src/core/rng';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const v = (name: string, values: number[], shape: number[]): NamedVariable => ({
  name,
  variable: tf.variable(tf.tensor(values, shape), true, `${name}-${Math.random()}`),
});

/** x [N,1,1,2] → dense 2→3 (+b) → relu → dense 3→2 (+b). */
function twoLayer(): Model & { w1: number[][]; w2: number[][] } {
  const w1 = [
    [1, -2, 0.5],
    [3, 0.25, -1],
  ];
  const w2 = [
    [2, -1],
    [0.5, 1.5],
    [-3, 1],
  ];
  const p = [
    v('fc1.weight', w1.flat(), [2, 3]),
    v('fc1.bias', [0.1, -0.2, 0.3], [3]),
    v('fc2.weight', w2.flat(), [3, 2]),
    v('fc2.bias', [1, -1], [2]),
  ];
  return {
    name: 'two-layer',
    numClasses: 2,
    inputShape: [1, 1, 2],
    parameters: p,
    buffers: [],
    w1,
    w2,
    apply: (x) =>
      tf.tidy(() => {
        const h = tf.relu(tf.add(tf.matMul(x.reshape([x.shape[0], 2]), p[0].variable as tf.Tensor2D), p[1].variable));
        return tf.add(tf.matMul(h, p[2].variable as tf.Tensor2D), p[3].variable) as tf.Tensor2D;
      }),
    dispose: () => p.forEach((q) => q.variable.dispose()),
  };
}

/** x [N,1,1,2] → 1×1 conv 2→3 (no bias) → BatchNorm(3) (eval) → relu → dense 3→2. */
function convBn() {
  const k = [
    [0.5, -1, 2],
    [1.5, 0.3, -0.7],
  ];
  const gamma = [2, 0.5, -1.5];
  const beta = [0.3, -0.1, 0.2];
  const mean = [0.4, -0.6, 1.1];
  const variance = [0.25, 4, 1.44];
  const d = [
    [1, -2],
    [0.4, 0.6],
    [-1.2, 0.8],
  ];
  const p = [
    v('conv.weight', k.flat(), [1, 1, 2, 3]),
    v('bn.weight', gamma, [3]),
    v('bn.bias', beta, [3]),
    v('fc.weight', d.flat(), [3, 2]),
  ];
  const b = [v('bn.running_mean', mean, [3]), v('bn.running_var', variance, [3])];
  const model: Model = {
    name: 'conv-bn',
    numClasses: 2,
    inputShape: [1, 1, 2],
    parameters: p,
    buffers: b,
    apply: (x) =>
      tf.tidy(() => {
        const c = tf.conv2d(x, p[0].variable as tf.Tensor4D, 1, 'valid');
        const n = tf.batchNorm4d(
          c,
          b[0].variable as tf.Tensor1D,
          b[1].variable as tf.Tensor1D,
          p[2].variable as tf.Tensor1D,
          p[1].variable as tf.Tensor1D,
          1e-5,
        );
        return tf.matMul(tf.relu(n).reshape([x.shape[0], 3]), p[3].variable as tf.Tensor2D) as tf.Tensor2D;
      }),
    dispose: () => [...p, ...b].forEach((q) => q.variable.dispose()),
  };
  return { model, k, gamma, variance, d };
}

/** Largest singular value of a matrix with 2 rows or 2 columns: closed form from its 2×2 Gram matrix. */
function sigmaMax2(m: number[][]): number {
  const rows = m.length === 2 ? m : m[0].map((_, j) => m.map((r) => r[j]));
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
  const [a, bb, c] = [dot(rows[0], rows[0]), dot(rows[0], rows[1]), dot(rows[1], rows[1])];
  return Math.sqrt((a + c) / 2 + Math.sqrt(((a - c) / 2) ** 2 + bb * bb));
}

test('spectral norm of a known matrix: [[3,0],[4,5]] has σ_max = √45', () => {
  const w = tf.tensor2d([
    [3, 0],
    [4, 5],
  ]);
  expect(spectralNorm(w, 2, 2, 1)).toBeCloseTo(Math.sqrt(45), 5);
  // a rank-1 matrix u vᵀ has σ = ‖u‖‖v‖
  const r1 = tf.outerProduct(tf.tensor1d([1, 2, 2]), tf.tensor1d([3, 4]));
  expect(spectralNorm(r1, 3, 2, 9)).toBeCloseTo(15, 4);
  tf.dispose([w, r1]);
});

test('Frobenius, spectral, ‖·‖_{2,1}, spectral complexity and path norm of a 2-layer net by hand', async () => {
  const m = twoLayer();
  const before = tf.memory().numTensors;
  const fro1 = Math.sqrt(m.w1.flat().reduce((s, x) => s + x * x, 0));
  const fro2 = Math.sqrt(m.w2.flat().reduce((s, x) => s + x * x, 0));
  expect(frobeniusNorms(m)).toEqual([expect.closeTo(fro1, 6), expect.closeTo(fro2, 6)]);
  const mats = weightMatrices(m);
  expect(mats.map((w) => [w.name, w.rows, w.cols])).toEqual([
    ['fc1.weight', 2, 3],
    ['fc2.weight', 3, 2],
  ]);
  // Σ over output units of the norm of the incoming weights
  const n21 = (w: number[][]) => w[0].map((_, o) => Math.sqrt(w.reduce((s, r) => s + r[o] ** 2, 0))).reduce((a, b) => a + b, 0);
  expect(norm21(mats[0])).toBeCloseTo(n21(m.w1), 6);
  expect(norm21(mats[1])).toBeCloseTo(n21(m.w2), 6);
  const s1 = sigmaMax2(m.w1);
  const s2 = sigmaMax2(m.w2);
  // path norm: Σ_{i,j,k} W1[i][j]² W2[j][k]²
  let path = 0;
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) path += m.w1[i][j] ** 2 * m.w2[j][k] ** 2;
  const margins = Float32Array.from([-1, 0.5, 2, 3, 0.25, 1, 4, 1.5, 2.5, 0]);
  const rec = { train_clean_acc: 0.9, test_clean_acc: 0.7, train_robust_acc: 0.6, test_robust_acc: 0.35 } as EpochRecord;
  const out = await complexityMeasures(m, { seed: 3, epoch: 1, margins, epochRecord: rec });
  expect(out.frobenius_sum).toBeCloseTo(fro1 + fro2, 5);
  expect(out.frobenius_sq_sum).toBeCloseTo(fro1 ** 2 + fro2 ** 2, 4);
  expect(out.frobenius_prod).toBeCloseTo(fro1 * fro2, 4);
  expect(out.spectral_prod).toBeCloseTo(s1 * s2, 4);
  const sc = s1 * s2 * Math.pow((n21(m.w1) / s1) ** (2 / 3) + (n21(m.w2) / s2) ** (2 / 3), 1.5);
  expect(out.spectral_complexity).toBeCloseTo(sc, 3);
  // numpy.quantile([-1,0,0.25,0.5,1,1.5,2,2.5,3,4], 0.1): position 0.9 → −1 + 0.9·(0 − (−1)) = −0.1
  expect(out.margin_quantile).toBeCloseTo(-0.1, 6);
  expect(out.spectral_complexity_over_margin).toBeNaN(); // γ ≤ 0: undefined
  expect(out.path_norm_sq).toBeCloseTo(path, 4);
  expect(out.path_norm).toBeCloseTo(Math.sqrt(path), 5);
  expect(out.standard_generalization_gap).toBeCloseTo(0.2, 12);
  expect(out.robust_generalization_gap).toBeCloseTo(0.25, 12);
  expect(out.sharpness_max).toBeUndefined(); // no loss given
  expect(tf.memory().numTensors).toBe(before);
  // the weights (and biases) are back after the path norm
  expect(Array.from(m.parameters[1].variable.dataSync())).toEqual(Array.from(Float32Array.from([0.1, -0.2, 0.3])));
  m.dispose();
});

test('quantile: numpy linear interpolation', () => {
  expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
  expect(quantile([5, 1, 3], 0.1)).toBeCloseTo(1.4, 12);
  expect(quantile([], 0.1)).toBeNaN();
});

test('path norm folds eval-mode BatchNorm in as (γ/√(var+ε))², shifts removed', async () => {
  const { model, k, gamma, variance, d } = convBn();
  let path = 0;
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 3; j++) for (let o = 0; o < 2; o++) path += k[i][j] ** 2 * (gamma[j] ** 2 / (variance[j] + 1e-5)) * d[j][o] ** 2;
  const before = tf.memory().numTensors;
  const snapshot = [...model.parameters, ...model.buffers].map((p) => Array.from(p.variable.dataSync()));
  expect(await pathNormSq(model)).toBeCloseTo(path, 3);
  expect([...model.parameters, ...model.buffers].map((p) => Array.from(p.variable.dataSync()))).toEqual(snapshot);
  expect(tf.memory().numTensors).toBe(before);
  model.dispose();
});

test('sharpness: seeded multiplicative noise, max/mean increase of the given loss, weights restored bit for bit', async () => {
  const m = twoLayer();
  const snapshot = m.parameters.map((p) => Array.from(p.variable.dataSync()));
  const loss = (model: Model) => model.parameters.reduce((s, p) => s + Array.from(p.variable.dataSync()).reduce((a, x) => a + x * x, 0), 0);
  const sigma = 0.05;
  const s = await sharpness(m, { loss, sigma, draws: 3, seed: 11, epoch: 4 });
  // reference: the same draws, in float32 like the weights
  const incs: number[] = [];
  for (let dr = 0; dr < 3; dr++) {
    const rng = new Rng(deriveSeed(11, 'complexity-sharpness', 4, dr));
    let inc = 0;
    for (const w of snapshot) {
      const eps = rng.fillNormal(new Float32Array(w.length));
      w.forEach((x, i) => {
        const y = Math.fround(x + Math.fround(Math.fround(Math.abs(x) * sigma) * eps[i]));
        inc += y * y - x * x;
      });
    }
    incs.push(inc);
  }
  expect(s.max).toBeCloseTo(Math.max(...incs), 5);
  expect(s.mean).toBeCloseTo(incs.reduce((a, b) => a + b, 0) / 3, 5);
  expect(m.parameters.map((p) => Array.from(p.variable.dataSync()))).toEqual(snapshot);
  const again = await sharpness(m, { loss, sigma, draws: 3, seed: 11, epoch: 4 });
  expect(again).toEqual(s); // seeded: same draws, same numbers
  m.dispose();
});
