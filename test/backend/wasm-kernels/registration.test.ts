import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { WASM_TRAINING_KERNELS, wasmTrainingKernelNames } from '../../../src/backend/wasm-kernels';

/** The wasm backend really dispatches to atflow's kernels, and they release every intermediate buffer. */
beforeAll(async () => {
  await initBackend('wasm');
});

test("every training kernel is registered for wasm as atflow's implementation", () => {
  expect(wasmTrainingKernelNames().sort()).toEqual([
    'BatchMatMul',
    'Conv2DBackpropFilter',
    'Conv2DBackpropInput',
    'MaxPoolGrad',
    'Mean',
    'Sum',
    'Tile',
  ]);
  for (const config of WASM_TRAINING_KERNELS) {
    expect(tf.getKernel(config.kernelName, 'wasm')?.kernelFunc).toBe(config.kernelFunc);
  }
});

test('a training step leaks neither tensors nor wasm buffers', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const step = () =>
    tf.tidy(() => {
      const x = tf.ones([3, 9, 9, 2]);
      const w = tf.ones([3, 3, 2, 4]);
      const d = tf.ones([36, 5]);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
        const h = tf.maxPool(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')) as tf.Tensor4D, 3, 2, 'same');
        const p = tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'), 2, 2, 'valid');
        return tf.add(
          tf.add(tf.sum(tf.tile(h, [1, 2, 1, 1])), tf.sum(tf.mean(p, [0, 1, 2], true))),
          tf.sum(tf.matMul(tf.reshape(h, [3, 36]), c)),
        );
      };
      return tf.grads(f)([x, w, d]);
    });
  tf.dispose(step()); // warm-up: lazily created constants are not leaks
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  tf.dispose(step());
  expect(tf.memory().numTensors).toBe(tensors);
  expect(backend.numDataIds()).toBe(buffers);
});
