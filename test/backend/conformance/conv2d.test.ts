import * as tf from '@tensorflow/tfjs';
import { BACKENDS_UNDER_TEST, compareWithCpu, coveringCases, initAllBackends, randomValues, TOLERANCE } from './conformance-helpers';

/**
 * Conv2D forward and both gradients (Conv2DBackpropInput, Conv2DBackpropFilter: atflow's wasm kernels),
 * through tf.conv2d / tf.grads so the real dispatch path runs. Every (kernel size, stride, padding)
 * geometry is tested; batch, channels and odd spatial sizes cycle so every value of each appears.
 */
const GEOMETRIES = [1, 3, 5, 7].flatMap((k) => [1, 2].flatMap((stride) => (['same', 'valid'] as const).map((pad) => ({ k, stride, pad }))));
const SHAPES = coveringCases(
  { batch: [1, 7], inChannels: [1, 3, 16, 64], outChannels: [32, 1, 8, 64], height: [5, 9, 11, 7], width: [11, 7, 5, 9] },
  GEOMETRIES.length,
);
// 'valid' needs the input at least as large as the kernel
const CASES = GEOMETRIES.map((g, i) => ({ ...g, ...SHAPES[i], height: Math.max(g.k, SHAPES[i].height), width: Math.max(g.k, SHAPES[i].width) }));

beforeAll(initAllBackends);

describe.each(BACKENDS_UNDER_TEST)('conv2d on %s matches cpu', (backend) => {
  test.each(CASES)('k$k stride $stride $pad, x [$batch,$height,$width,$inChannels] -> $outChannels', async (c) => {
    const xShape: [number, number, number, number] = [c.batch, c.height, c.width, c.inChannels];
    const wShape: [number, number, number, number] = [c.k, c.k, c.inChannels, c.outChannels];
    const xs = randomValues(xShape, 1, `x${JSON.stringify(c)}`);
    const ws = randomValues(wShape, 2, `w${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor4d(xs, xShape);
      const w = tf.tensor4d(ws, wShape);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      // a fixed random cotangent, so every output position carries a different weight
      const r = tf.tensor(randomValues(y.shape, 3, `r${JSON.stringify(c)}`), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)))([x, w]);
      return [y, dx, dw];
    };
    const { error } = await compareWithCpu(backend, `conv2d ${JSON.stringify(c)}`, run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
