import * as tf from '@tensorflow/tfjs';
import { batchNormTrain, FUSED_BN_TRAIN } from '../../../src/backend/batch-norm-train';
import { availableBackends } from '../../../src/backend/select';
import {
  BACKENDS_UNDER_TEST,
  compareWithCpu,
  computeOn,
  initAllBackends,
  randomValues,
  relativeError,
  TOLERANCE,
} from './conformance-helpers';

/**
 * Train-mode BatchNorm (batchNormTrain: TensorFlow's FusedBatchNormV3 / FusedBatchNormGradV3 on
 * `tensorflow`, tfjs' composition elsewhere) against cpu: the output, the batch mean and biased
 * variance, and the gradients w.r.t. x, γ and β of a loss that weights every output differently.
 * On cpu the statistics are checked against the formulas.
 */
beforeAll(initAllBackends);

const CASES = [
  { n: 4, h: 5, w: 3, c: 8 },
  { n: 7, h: 3, w: 3, c: 16 },
  { n: 2, h: 1, w: 2, c: 3 },
];

function run(c: (typeof CASES)[number]): () => tf.Tensor[] {
  const shape = [c.n, c.h, c.w, c.c];
  // an offset per channel, so the mean matters
  const xs = randomValues(shape, 31, `bn x ${JSON.stringify(c)}`).map((v, i) => 2 * v + (i % c.c) * 0.3);
  const gs = randomValues([c.c], 32, 'bn gamma').map((v) => 1 + 0.2 * v);
  const bs = randomValues([c.c], 33, 'bn beta');
  const rs = randomValues(shape, 34, `bn r ${JSON.stringify(c)}`);
  return () => {
    const x = tf.tensor4d(xs, shape as [number, number, number, number]);
    const g = tf.tensor1d(gs);
    const b = tf.tensor1d(bs);
    const r = tf.tensor(rs, shape);
    const out = batchNormTrain(x, g, b, 1e-5);
    const grads = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(batchNormTrain(a as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5).y, r)),
    )([x, g, b]);
    return [out.y, out.mean, out.variance, ...grads];
  };
}

test('the fused kernel is registered exactly where the tensorflow backend is', () => {
  expect(tf.getKernel(FUSED_BN_TRAIN, 'tensorflow') !== undefined).toBe(availableBackends().includes('tensorflow'));
});

test('on cpu, mean and variance are the batch mean and the biased variance over N, H, W', async () => {
  const c = CASES[0];
  const { values } = await computeOn('cpu', () => run(c)().slice(1, 3));
  const xs = randomValues([c.n, c.h, c.w, c.c], 31, `bn x ${JSON.stringify(c)}`).map((v, i) => 2 * v + (i % c.c) * 0.3);
  const count = c.n * c.h * c.w;
  const mean = new Float32Array(c.c);
  const variance = new Float32Array(c.c);
  for (let k = 0; k < c.c; k++) {
    let s = 0;
    for (let i = k; i < xs.length; i += c.c) s += xs[i];
    const m = s / count;
    let v = 0;
    for (let i = k; i < xs.length; i += c.c) v += (xs[i] - m) ** 2;
    mean[k] = m;
    variance[k] = v / count;
  }
  expect(relativeError(mean, values[0])).toBeLessThan(1e-5);
  expect(relativeError(variance, values[1])).toBeLessThan(1e-5);
});

describe.each(BACKENDS_UNDER_TEST)('train-mode BatchNorm on %s matches cpu', (backend) => {
  test.each(CASES)('x [$n,$h,$w,$c]: y, mean, variance, dx, dγ, dβ', async (c) => {
    const { error } = await compareWithCpu(backend, `bn ${JSON.stringify(c)}`, run(c));
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
