import * as tf from '@tensorflow/tfjs';
import { BACKENDS_UNDER_TEST, compareWithCpu, initAllBackends, randomValues, TOLERANCE } from './conformance-helpers';

/**
 * Sum and Mean (atflow's wasm kernels: one XNNPACK average pooling for leading axis runs, a product with
 * ones for trailing ones,
 * the stock kernel otherwise) against cpu: the BatchNorm reductions over [N,H,W], bias gradients,
 * per-row sums, every axis, negative axes, keepDims, the fallbacks (middle axes, int32), and the
 * gradient of a train-mode BatchNorm (tf.moments) that goes through both.
 */
const CASES: Array<{ shape: number[]; axis: number | number[]; keepDims: boolean }> = [
  { shape: [7, 5, 9, 16], axis: [0, 1, 2], keepDims: false },
  { shape: [7, 5, 9, 16], axis: [0, 1, 2], keepDims: true },
  { shape: [1, 13, 11, 64], axis: [0, 1, 2], keepDims: false },
  { shape: [7, 3], axis: 0, keepDims: false },
  { shape: [4, 33], axis: 1, keepDims: true },
  { shape: [4, 33], axis: -1, keepDims: false },
  { shape: [3, 4, 5, 6], axis: [2, 3], keepDims: false },
  { shape: [3, 4, 5], axis: [0, 1, 2], keepDims: false },
  { shape: [3, 4, 5], axis: [2, 0, 1], keepDims: true },
  { shape: [3, 4, 5], axis: 1, keepDims: false }, // middle axis: stock fallback
  { shape: [2, 3, 4, 5], axis: [0, 2], keepDims: true }, // non-contiguous: stock fallback
  { shape: [97], axis: 0, keepDims: false },
  { shape: [1, 1, 1, 8], axis: [0, 1, 2], keepDims: false }, // reduced size 1
  { shape: [16, 32, 32, 8], axis: [0, 1, 2], keepDims: true }, // a BatchNorm-sized window (M = 16384)
];

beforeAll(initAllBackends);

describe.each(BACKENDS_UNDER_TEST)('sum and mean on %s match cpu', (backend) => {
  test.each(CASES)('x [$shape] axis $axis keepDims $keepDims', async (c) => {
    const xs = randomValues(c.shape, 21, `reduce${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor(xs, c.shape);
      return [tf.sum(x, c.axis, c.keepDims), tf.mean(x, c.axis, c.keepDims)];
    };
    const { error, shape } = await compareWithCpu(backend, `reduce ${JSON.stringify(c)}`, run);
    expect(shape).toEqual(tf.tidy(() => tf.sum(tf.zeros(c.shape), c.axis, c.keepDims).shape));
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  it('int32 sum (stock fallback) is exact', async () => {
    const run = () =>
      tf.sum(
        tf.tensor(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          [2, 3],
          'int32',
        ),
        0,
      );
    await tf.setBackend(backend);
    const out = tf.tidy(run);
    expect(out.dtype).toBe('int32');
    expect(Array.from(out.dataSync())).toEqual([5, 7, 9]);
    out.dispose();
  });

  it('train-mode BatchNorm: output and gradients w.r.t. x, γ, β', async () => {
    const shape = [6, 7, 5, 12];
    const xs = randomValues(shape, 22, 'bn-x');
    const rs = randomValues(shape, 23, 'bn-r');
    const gs = randomValues([12], 24, 'bn-g');
    const run = () => {
      const x = tf.tensor(xs, shape);
      const r = tf.tensor(rs, shape);
      const g = tf.tensor(gs, [12]);
      const b = tf.zeros([12]);
      const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
        const { mean, variance } = tf.moments(xi, [0, 1, 2]);
        return tf.sum(tf.mul(tf.batchNorm(xi, mean, variance, bi, gi, 1e-5), r));
      };
      return tf.grads(f)([x, g, b]);
    };
    const { error } = await compareWithCpu(backend, 'bn grads', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
