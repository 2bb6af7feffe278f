import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { createModel, stateDictOf } from '../../src/models';
import { firstDifference, maxAbsDiff, unitValues } from './helpers';

/**
 * ∂/∂x Σ_k c_k·logit_k for the mlp, by hand from its weights (PyTorch layout [out, in]):
 * g = W1ᵀ (m1 ⊙ W2ᵀ (m2 ⊙ W3ᵀ c)), with m the ReLU masks of the forward pass.
 */
function mlpInputGradient(weights: Map<string, Float32Array>, x: Float32Array, c: number[]): Float64Array {
  const dense = (w: Float32Array, b: Float32Array, v: ArrayLike<number>) =>
    Array.from(b, (bias, o) => {
      let s = bias;
      for (let i = 0; i < v.length; i++) s += w[o * v.length + i] * v[i];
      return s;
    });
  const backward = (w: Float32Array, inSize: number, g: ArrayLike<number>) => {
    const out = new Float64Array(inSize);
    for (let o = 0; o < g.length; o++) for (let i = 0; i < inSize; i++) out[i] += w[o * inSize + i] * g[o];
    return out;
  };
  const z1 = dense(weights.get('fc1.weight')!, weights.get('fc1.bias')!, x);
  const a1 = z1.map((v) => Math.max(v, 0));
  const z2 = dense(weights.get('fc2.weight')!, weights.get('fc2.bias')!, a1);
  const g2 = backward(weights.get('fc3.weight')!, 256, c).map((v, i) => (z2[i] > 0 ? v : 0));
  const g1 = backward(weights.get('fc2.weight')!, 256, g2).map((v, i) => (z1[i] > 0 ? v : 0));
  return backward(weights.get('fc1.weight')!, x.length, g1);
}

describe.each(['cpu', 'wasm'] as const)('gradients w.r.t. the input on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('eval mode: tf.grad through the mlp equals the hand-derived gradient', () => {
    const m = createModel('mlp', { numClasses: 3, inputShape: [4, 5, 2], seed: 8 });
    const xs = unitValues(40, 3);
    // the model flattens NHWC input in PyTorch's (c, h, w) order: build that order for the hand computation
    const chw = new Float32Array(40);
    for (let h = 0; h < 4; h++) for (let w = 0; w < 5; w++) for (let c = 0; c < 2; c++) chw[c * 20 + h * 5 + w] = xs[(h * 5 + w) * 2 + c];
    const c = [0.5, -1, 2];
    const weights = new Map(stateDictOf(m).map((e) => [e.name, e.values as Float32Array]));
    const expectedChw = mlpInputGradient(weights, chw, c);
    const x = tf.tensor4d(xs, [1, 4, 5, 2]);
    const g = tf.tidy(() =>
      tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(m.apply(t as tf.Tensor4D, 'eval'), tf.tensor1d(c))))(x)
        .dataSync(),
    );
    const gChw = new Float32Array(40);
    for (let h = 0; h < 4; h++) for (let w = 0; w < 5; w++) for (let k = 0; k < 2; k++) gChw[k * 20 + h * 5 + w] = g[(h * 5 + w) * 2 + k];
    expect(maxAbsDiff(gChw, expectedChw)).toBeLessThan(1e-5);
    x.dispose();
    m.dispose();
  });

  it('eval mode: input gradients of a BN network leave every buffer untouched', () => {
    const m = createModel('wrn-10-1', { numClasses: 10, seed: 9 });
    const before = stateDictOf(m);
    const x = tf.tensor4d(unitValues(2 * 32 * 32 * 3, 4), [2, 32, 32, 3]);
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10));
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, m.apply(t as tf.Tensor4D, 'eval')))(x));
    expect(g.shape).toEqual([2, 32, 32, 3]);
    const values = g.dataSync();
    expect(Array.from(values).every(Number.isFinite)).toBe(true);
    expect(Math.max(...Array.from(values, Math.abs))).toBeGreaterThan(0);
    const after = stateDictOf(m);
    before.forEach((e, i) => expect([e.name, firstDifference(after[i].values, e.values)]).toEqual([e.name, -1]));
    tf.dispose([g, x, labels]);
    m.dispose();
  });
});

describe('tensor ownership and training gradients (wasm)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('apply, gradients and dispose bring tf.memory().numTensors back to baseline', () => {
    const baseline = tf.memory().numTensors;
    for (const name of ['cnn-small', 'wrn-10-1', 'preact-resnet18']) {
      const shape: [number, number, number] = name === 'cnn-small' ? [28, 28, 1] : [32, 32, 3];
      const m = createModel(name, { numClasses: 10, inputShape: shape, seed: 1 });
      const created = tf.memory().numTensors;
      expect(created - baseline).toBe(m.parameters.length + m.buffers.length);
      const x = tf.tensor4d(unitValues(2 * shape[0] * shape[1] * shape[2], 5), [2, ...shape]);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 2], 'int32'), 10));
      for (const mode of ['eval', 'train'] as const) m.apply(x, mode).dispose();
      tf.grad((t: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, m.apply(t as tf.Tensor4D, 'eval')))(x).dispose();
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, m.apply(x, 'train')) as tf.Scalar,
        m.parameters.map((p) => p.variable),
      );
      // train mode: one gradient per parameter (running statistics are not trainable)
      expect(Object.keys(grads).length).toBe(m.parameters.length);
      expect(Object.values(grads).every((g) => g.size > 0)).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
      expect(tf.memory().numTensors).toBe(created + 2); // x and y
      tf.dispose([x, y]);
      m.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
      expect(() => m.apply(x, 'eval')).toThrow(/was disposed/);
    }
  });

  it('rejects inputs of the wrong shape or mode with a named error', () => {
    const m = createModel('cnn-small', { numClasses: 10, seed: 1 });
    const wrong = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
    expect(() => m.apply(wrong, 'eval')).toThrow(AtflowError);
    expect(() => m.apply(wrong, 'eval')).toThrow(/model 'cnn-small' takes NHWC input \[B, 28, 28, 1\], got \[1, 32, 32, 3\]/);
    const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
    expect(() => m.apply(x, 'test' as never)).toThrow(/mode must be 'train' or 'eval'/);
    tf.dispose([wrong, x]);
    m.dispose();
  });
});
