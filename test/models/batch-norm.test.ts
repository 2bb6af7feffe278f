import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { BatchNorm2d } from '../../src/models/layers/batch-norm';
import { maxAbsDiff } from './helpers';

/** A BN layer over 2 channels with chosen γ, β and running statistics. */
function layer(): BatchNorm2d {
  const bn = new BatchNorm2d('bn', 2);
  bn.weight.variable = tf.variable(tf.tensor1d([1.5, 0.5]));
  bn.bias.variable = tf.variable(tf.tensor1d([0.1, -0.2]));
  bn.runningMean.variable = tf.variable(tf.tensor1d([0.3, -1]), false);
  bn.runningVar.variable = tf.variable(tf.tensor1d([2, 0.5]), false);
  bn.numBatchesTracked.variable = tf.variable(tf.scalar(4, 'int32'), false);
  return bn;
}

const dispose = (bn: BatchNorm2d) => bn.slots().forEach((s) => s.variable!.dispose());

// x: N=2, H=1, W=3, C=2 in NHWC; channel 0 = [1, 2, 4, 0, -1, 3], channel 1 = [5, 5, 6, 7, 5, 2]
const ch0 = [1, 2, 4, 0, -1, 3];
const ch1 = [5, 5, 6, 7, 5, 2];
const xValues = ch0.flatMap((v, i) => [v, ch1[i]]);

function handStats(v: number[]) {
  const n = v.length;
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const biased = v.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  return { mean, biased, unbiased: (biased * n) / (n - 1) };
}

describe.each(['cpu', 'wasm'] as const)('BatchNorm2d on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('eval mode normalises with the running statistics', () => {
    const bn = layer();
    const y = tf.tidy(() => bn.apply(tf.tensor4d(xValues, [2, 1, 3, 2]), 'eval').dataSync());
    const expected = xValues.map((v, i) => {
      const c = i % 2;
      const [m, s2, g, b] = c === 0 ? [0.3, 2, 1.5, 0.1] : [-1, 0.5, 0.5, -0.2];
      return ((v - m) / Math.sqrt(s2 + 1e-5)) * g + b;
    });
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-5);
    expect(bn.numBatchesTracked.variable!.dataSync()[0]).toBe(4); // eval changes nothing
    expect(Array.from(bn.runningMean.variable!.dataSync())).toEqual([0.3, -1].map(Math.fround));
    dispose(bn);
  });

  it('train mode uses batch statistics (biased variance) and updates running ones with the unbiased variance', () => {
    const bn = layer();
    const y = tf.tidy(() => bn.apply(tf.tensor4d(xValues, [2, 1, 3, 2]), 'train').dataSync());
    const s = [handStats(ch0), handStats(ch1)];
    const expected = xValues.map((v, i) => {
      const c = i % 2;
      const [g, b] = c === 0 ? [1.5, 0.1] : [0.5, -0.2];
      return ((v - s[c].mean) / Math.sqrt(s[c].biased + 1e-5)) * g + b;
    });
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-5);
    // PyTorch: running = (1 − 0.1)·running + 0.1·batch statistic, with the unbiased variance; counter + 1
    expect(maxAbsDiff(bn.runningMean.variable!.dataSync(), [0.9 * 0.3 + 0.1 * s[0].mean, 0.9 * -1 + 0.1 * s[1].mean])).toBeLessThan(1e-6);
    expect(maxAbsDiff(bn.runningVar.variable!.dataSync(), [0.9 * 2 + 0.1 * s[0].unbiased, 0.9 * 0.5 + 0.1 * s[1].unbiased])).toBeLessThan(
      1e-6,
    );
    expect(bn.numBatchesTracked.variable!.dataSync()[0]).toBe(5);
    expect(bn.numBatchesTracked.variable!.dtype).toBe('int32');
    dispose(bn);
  });

  it('train-mode gradients flow through the batch statistics', () => {
    const bn = layer();
    const x = tf.tensor4d(xValues, [2, 1, 3, 2]);
    const weights = tf.tensor4d(
      xValues.map((_, i) => ((i * 7) % 5) - 2),
      [2, 1, 3, 2],
    );
    const f = (t: tf.Tensor) => tf.sum(tf.mul(bn.apply(t as tf.Tensor4D, 'train'), weights));
    const g = tf.tidy(() => tf.grad(f)(x).dataSync());
    // Central differences in float64 of the same formula, by hand.
    const loss = (vals: number[]) => {
      let total = 0;
      for (const c of [0, 1]) {
        const v = vals.filter((_, i) => i % 2 === c);
        const { mean, biased } = handStats(v);
        const [gm, b] = c === 0 ? [1.5, 0.1] : [0.5, -0.2];
        vals.forEach((val, i) => {
          if (i % 2 === c) total += (((val - mean) / Math.sqrt(biased + 1e-5)) * gm + b) * (((i * 7) % 5) - 2);
        });
      }
      return total;
    };
    const h = 1e-4;
    const numeric = xValues.map((_, i) => {
      const up = [...xValues];
      const down = [...xValues];
      up[i] += h;
      down[i] -= h;
      return (loss(up) - loss(down)) / (2 * h);
    });
    expect(maxAbsDiff(g, numeric)).toBeLessThan(1e-3);
    // The gradient of a BN output summed with constant weights per channel is zero, the known identity.
    const gConst = tf.tidy(() =>
      tf
        .grad((t: tf.Tensor) => tf.sum(bn.apply(t as tf.Tensor4D, 'train')))(x)
        .dataSync(),
    );
    expect(Math.max(...Array.from(gConst, Math.abs))).toBeLessThan(1e-4);
    tf.dispose([x, weights]);
    dispose(bn);
  });

  it('refuses train mode with one value per channel, like PyTorch', () => {
    const bn = layer();
    expect(() => tf.tidy(() => bn.apply(tf.zeros([1, 1, 1, 2]) as tf.Tensor4D, 'train'))).toThrow(AtflowError);
    expect(() => tf.tidy(() => bn.apply(tf.zeros([1, 1, 1, 2]) as tf.Tensor4D, 'train'))).toThrow(/more than 1 value per channel/);
    dispose(bn);
  });
});
