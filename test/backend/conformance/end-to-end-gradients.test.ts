import * as tf from '@tensorflow/tfjs';
import { BACKENDS_UNDER_TEST, compareWithCpu, initAllBackends, randomValues, TOLERANCE } from './conformance-helpers';

/**
 * Whole training gradients (w.r.t. every weight and w.r.t. the input) of the two model shapes atflow
 * trains, written with plain tf ops: the MNIST CNN (conv3x3x32-relu-maxpool, conv3x3x64-relu-maxpool,
 * dense 128, dense 10, softmax cross-entropy) and a BatchNorm ResNet basic block in train mode
 * (batch statistics), on each backend vs cpu.
 */
beforeAll(initAllBackends);

const CNN = { batch: 7, size: 13, classes: 10 };
const CNN_SHAPES: Record<string, number[]> = {
  x: [CNN.batch, CNN.size, CNN.size, 1],
  w1: [3, 3, 1, 32],
  b1: [32],
  w2: [3, 3, 32, 64],
  b2: [64],
  w3: [Math.floor(CNN.size / 4) ** 2 * 64, 128],
  b3: [128],
  w4: [128, 10],
  b4: [10],
};

function smallCnnLoss(p: Record<string, tf.Tensor>, labels: tf.Tensor): tf.Scalar {
  let h = tf.relu(tf.add(tf.conv2d(p.x as tf.Tensor4D, p.w1 as tf.Tensor4D, 1, 'same'), p.b1));
  h = tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid');
  h = tf.relu(tf.add(tf.conv2d(h as tf.Tensor4D, p.w2 as tf.Tensor4D, 1, 'same'), p.b2));
  h = tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid');
  h = tf.reshape(h, [CNN.batch, -1]);
  h = tf.relu(tf.add(tf.matMul(h, p.w3), p.b3));
  const logits = tf.add(tf.matMul(h, p.w4), p.b4);
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

const BLOCK = { batch: 7, size: 9, channels: 16 };
const BLOCK_SHAPES: Record<string, number[]> = {
  x: [BLOCK.batch, BLOCK.size, BLOCK.size, BLOCK.channels],
  w1: [3, 3, BLOCK.channels, BLOCK.channels],
  g1: [BLOCK.channels],
  be1: [BLOCK.channels],
  w2: [3, 3, BLOCK.channels, BLOCK.channels],
  g2: [BLOCK.channels],
  be2: [BLOCK.channels],
};

function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm(x, mean, variance, beta, gamma, 1e-5);
}

function resnetBlockLoss(p: Record<string, tf.Tensor>, r: tf.Tensor): tf.Scalar {
  let h = tf.relu(batchNormTrain(tf.conv2d(p.x as tf.Tensor4D, p.w1 as tf.Tensor4D, 1, 'same'), p.g1, p.be1));
  h = batchNormTrain(tf.conv2d(h as tf.Tensor4D, p.w2 as tf.Tensor4D, 1, 'same'), p.g2, p.be2);
  const out = tf.relu(tf.add(h, p.x));
  return tf.sum(tf.mul(out, r));
}

function gradientsOf(shapes: Record<string, number[]>, tag: string, loss: (p: Record<string, tf.Tensor>) => tf.Scalar): () => tf.Tensor[] {
  const names = Object.keys(shapes);
  // He-like scale keeps activations O(1) through the layers; gammas near 1
  const values = names.map((n) => {
    const v = randomValues(shapes[n], 11, `${tag} ${n}`);
    const fanIn = shapes[n].length > 1 ? shapes[n].slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    return n.startsWith('g') ? v.map((e) => 1 + 0.1 * e) : v.map((e) => (e * Math.sqrt(6 / fanIn)) / Math.sqrt(3));
  });
  return () => {
    const tensors = names.map((n, i) => tf.tensor(values[i], shapes[n]));
    const f = (...args: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, args[i]])));
    const { value, grads } = tf.valueAndGrads(f)(tensors);
    return [value, ...grads];
  };
}

describe.each(BACKENDS_UNDER_TEST)('training gradients on %s match cpu', (backend) => {
  test('MNIST CNN: loss and gradients w.r.t. all weights and the input', async () => {
    const labels = Array.from({ length: CNN.batch }, (_, i) => (i * 3) % CNN.classes);
    const run = gradientsOf(CNN_SHAPES, 'cnn', (p) => smallCnnLoss(p, tf.oneHot(labels, CNN.classes)));
    const { error } = await compareWithCpu(backend, 'cnn gradients', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  test('BatchNorm ResNet basic block (train mode): gradients w.r.t. convs, BN affine and the input', async () => {
    const rs = randomValues(BLOCK_SHAPES.x, 12, 'block cotangent');
    const run = gradientsOf(BLOCK_SHAPES, 'block', (p) => resnetBlockLoss(p, tf.tensor(rs, BLOCK_SHAPES.x)));
    const { error } = await compareWithCpu(backend, 'block gradients', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
