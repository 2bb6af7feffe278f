import * as tf from '@tensorflow/tfjs';
import { availableBackends, type BackendName, initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { deriveSeed, Rng } from '../../src/core/rng';
import type { Model } from '../../src/core/model';
import { createModel, Network } from '../../src/models';
import { BatchNorm2d } from '../../src/models/layers/batch-norm';
import { Conv2d } from '../../src/models/layers/conv2d';
import { Linear } from '../../src/models/layers/dense';
import { avgPool2d, flattenLikeTorch } from '../../src/models/layers/pooling';
import { crossEntropy } from '../../src/algorithms/objectives/ce';

/**
 * The `tensorflow` backend (tfjs-node built by `npx atflow setup-tensorflow`, or installed the usual way)
 * against `cpu`, the pure-JS reference. Where it is not built, the test asserts instead that asking for
 * it fails with the message that says how to get it.
 */
const TENSORFLOW = availableBackends().includes('tensorflow');
const TOLERANCE = 1e-4;

/** Max |a − b| over max |ref| (the conformance suites' measure). */
function relativeError(ref: Float32Array, got: Float32Array): number {
  expect(got.length).toBe(ref.length);
  let err = 0;
  let scale = 1e-12;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Number.isNaN(got[i]) ? Infinity : Math.abs(ref[i] - got[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / scale;
}

/**
 * One pre-activation residual block as in preact-resnet18 (BN in train mode, a stride-2 3×3 conv with
 * PyTorch's symmetric padding 1, a 1×1 stride-2 shortcut, the residual add), small enough for `cpu`.
 */
function preactBlockNet(seed: number): Model {
  const stem = new Conv2d('conv1', 3, 8, 3, { padding: 1, bias: false });
  const bn1 = new BatchNorm2d('block.bn1', 8);
  const conv1 = new Conv2d('block.conv1', 8, 16, 3, { stride: 2, padding: 1, bias: false });
  const bn2 = new BatchNorm2d('block.bn2', 16);
  const conv2 = new Conv2d('block.conv2', 16, 16, 3, { padding: 1, bias: false });
  const shortcut = new Conv2d('block.shortcut.0', 8, 16, 1, { stride: 2, bias: false });
  const bn = new BatchNorm2d('bn', 16);
  const linear = new Linear('linear', 16, 10);
  const layers = [stem, bn1, conv1, bn2, conv2, shortcut, bn, linear];
  return new Network(
    {
      name: 'preact-block',
      numClasses: 10,
      inputShape: [12, 12, 3],
      slots: layers.flatMap((l) => l.slots()),
      forward(x, mode) {
        const out = tf.relu(bn1.apply(stem.apply(x), mode));
        const main = conv2.apply(tf.relu(bn2.apply(conv1.apply(out), mode)));
        const y = tf.relu(bn.apply(tf.add(main, shortcut.apply(out)), mode));
        return linear.apply(flattenLikeTorch(avgPool2d(y, 6)));
      },
    },
    seed,
  );
}

interface Gradients {
  loss: number;
  byName: Map<string, Float32Array>;
}

/**
 * Loss and gradients of CE_mean(f(x), y) w.r.t. every parameter and w.r.t. x, for a freshly
 * initialised model (same seed, so the same weights on every backend), on a seeded batch.
 */
async function gradientsOn(backend: BackendName, build: () => Model, batch: number, mode: 'train' | 'eval'): Promise<Gradients> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const model = build();
  const inputShape = model.inputShape as [number, number, number];
  const n = batch * inputShape[0] * inputShape[1] * inputShape[2];
  const xs = new Rng(deriveSeed(7, 'test-input')).fillUniform(new Float32Array(n), 0, 1);
  const rng = new Rng(deriveSeed(7, 'test-labels'));
  const labels = Int32Array.from({ length: batch }, () => rng.nextUint32() % 10);
  const byName = new Map<string, Float32Array>();
  let loss = NaN;
  tf.tidy(() => {
    const x = tf.tensor4d(xs, [batch, ...inputShape]);
    const y = tf.tensor1d(labels, 'int32');
    const vars = model.parameters.map((p) => p.variable);
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(x, mode), y), vars);
    loss = value.dataSync()[0];
    for (const p of model.parameters) byName.set(p.name, Float32Array.from(grads[p.variable.name].dataSync()));
    const gx = tf.grad((xx: tf.Tensor) => crossEntropy(model.apply(xx as tf.Tensor4D, 'eval'), y))(x);
    byName.set('input', Float32Array.from(gx.dataSync()));
  });
  model.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return { loss, byName };
}

async function expectSameGradients(build: () => Model, batch: number, mode: 'train' | 'eval'): Promise<void> {
  const ref = await gradientsOn('cpu', build, batch, mode);
  const got = await gradientsOn('tensorflow', build, batch, mode);
  expect(Math.abs(got.loss - ref.loss)).toBeLessThan(TOLERANCE * Math.max(1, Math.abs(ref.loss)));
  const worst: Array<[string, number]> = [];
  for (const [name, r] of ref.byName) {
    const g = got.byName.get(name);
    expect(g).toBeDefined();
    worst.push([name, relativeError(r, g!)]);
  }
  // every parameter has a gradient, and none is all zeros (which would compare equal trivially)
  expect(worst.length).toBe(ref.byName.size);
  for (const [, r] of ref.byName) expect(r.some((v) => v !== 0)).toBe(true);
  expect(worst.filter(([, e]) => !(e <= TOLERANCE))).toEqual([]);
}

// Exactly one of the two suites is defined, so nothing is reported as skipped.
if (TENSORFLOW) {
  describe('tensorflow backend (built here)', () => {
    afterAll(async () => {
      await initBackend('cpu');
    });

    it('reports the TensorFlow C library it runs on and its thread count', async () => {
      const info = await initBackend('tensorflow');
      expect(info.name).toBe('tensorflow');
      expect(tf.getBackend()).toBe('tensorflow');
      // TF_Version() of libtensorflow (e.g. 2.21.0 from the pip wheel, 2.9.1 from tfjs-node's download), not tfjs-node's 4.x
      expect(info.tensorflowVersion).toMatch(/^2\.\d+\.\d+/);
      expect(info.threads).toBeGreaterThanOrEqual(1);
    });

    it('matches cpu on the MNIST CNN: loss, every weight gradient and the input gradient to 1e-4', async () => {
      await expectSameGradients(() => createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 7 }), 2, 'train');
    });

    it('matches cpu on a PreAct-ResNet block in train mode (BatchNorm, stride-2 padding-1 convs, residual add) to 1e-4', async () => {
      await expectSameGradients(() => preactBlockNet(7), 4, 'train');
    });
  });
} else {
  describe('tensorflow backend (not built here)', () => {
    it('asking for it is an AtflowError that names the packages and says how to build it', async () => {
      const err = await initBackend('tensorflow').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AtflowError);
      expect((err as AtflowError).code).toBe('BACKEND');
      expect((err as Error).message).toMatch(/@tensorflow\/tfjs-node/);
      expect((err as Error).message).toMatch(/npx atflow setup-tensorflow/);
    });
  });
}
