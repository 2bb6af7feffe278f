import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD } from '../../../src/backend/relu-grad';
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
 * ReLU's gradient through atflow's ReluGrad kernel (TensorFlow's op on `tensorflow`, a loop on cpu; wasm
 * keeps tfjs' composition, through the same registered gradient) against the reference formula dy·[x > 0], and each backend against cpu, including exact zeros
 * in x (ReLU of ReLU, max pooling of ReLU outputs: where ties and zeros are common).
 */
beforeAll(initAllBackends);

const SHAPE = [3, 5, 7, 4];
const xs = randomValues(SHAPE, 21, 'relu x').map((v, i) => (i % 5 === 0 ? 0 : v));
const dys = randomValues(SHAPE, 22, 'relu dy');

test("ReluGrad is registered on cpu and tensorflow; wasm keeps tfjs' composition (faster there)", () => {
  expect(tf.getKernel(RELU_GRAD, 'cpu')).toBeDefined();
  expect(tf.getKernel(RELU_GRAD, 'tensorflow')).toBeDefined();
  expect(tf.getKernel(RELU_GRAD, 'wasm')).toBeUndefined();
});

test('on cpu, the gradient of relu is dy·[x > 0] (the formula, elementwise)', async () => {
  const { values } = await computeOn('cpu', () =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), tf.tensor(dys, SHAPE))))(tf.tensor(xs, SHAPE)),
  );
  const expected = xs.map((x, i) => (x > 0 ? dys[i] : 0));
  expect(relativeError(expected, values[0])).toBe(0);
});

describe.each(BACKENDS_UNDER_TEST)('relu gradients on %s match cpu', (backend) => {
  test('first-order: d/dx sum(relu(relu(x)) · r)', async () => {
    const run = () => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.relu(x)), tf.tensor(dys, SHAPE))))(tf.tensor(xs, SHAPE));
    const { error } = await compareWithCpu(backend, 'relu first order', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  test('second-order through ReluGrad: d/dr of sum(grad_x(relu(x)·r)²)', async () => {
    const run = () => {
      const x = tf.tensor(xs, SHAPE);
      return tf.grad((r: tf.Tensor) => tf.sum(tf.square(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), r)))(x))))(
        tf.tensor(dys, SHAPE),
      );
    };
    const { error } = await compareWithCpu(backend, 'relu second order', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
