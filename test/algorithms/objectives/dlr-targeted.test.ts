import * as tf from '@tensorflow/tfjs';
import { initBackend, tensorflowAvailable } from '../../../src/backend/select';
import { Rng } from '../../../src/core/rng';
import { dlrTargetedLossComposed, dlrTargetedLossPerExample } from '../../../src/algorithms/objectives/dlr-targeted';

/**
 * APGD-T's loss is one custom-gradient op (fewer kernels per iteration on small batches). It must be
 * the targeted DLR of AutoAttack's dlr_loss_targeted exactly: equal to a float64 transcription of the
 * formula and of its derivative, and bit for bit the values and gradients of the version composed from
 * rank masks and autodiff (so APGD-T's iterates do not move), ties between logits included.
 */
const backends = ['cpu', ...(tensorflowAvailable() ? ['tensorflow' as const] : []), 'wasm'] as const;

/** dlr_loss_targeted and ∂/∂z in float64, from the sorted logits (ties: the lower index ranks first). */
function byHand(z: Float32Array, y: Int32Array, t: Int32Array, k: number): { value: number[]; grad: number[] } {
  const value: number[] = [];
  const grad: number[] = [];
  for (let i = 0; i < y.length; i++) {
    const row = Array.from(z.subarray(i * k, (i + 1) * k));
    const order = row
      .map((v, j) => [v, j] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .map(([, j]) => j);
    const [p1, , p3, p4] = order;
    const diff = row[y[i]] - row[t[i]];
    const den = row[p1] - (row[p3] + row[p4]) / 2 + 1e-12;
    value.push(-diff / den);
    const g = new Array(k).fill(0);
    g[y[i]] += -1 / den;
    g[t[i]] += 1 / den;
    g[p1] += diff / den ** 2;
    g[p3] += -diff / den ** 2 / 2;
    g[p4] += -diff / den ** 2 / 2;
    grad.push(...g);
  }
  return { value, grad };
}

describe.each(backends)('the targeted DLR loss on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('equals the formula in float64 and, bit for bit, the composed version (values and gradients, ties included)', () => {
    const base = tf.memory().numTensors;
    const rng = new Rng(3);
    const B = 48;
    const K = 10;
    for (let trial = 0; trial < 12; trial++) {
      // odd trials: small integer logits, so that many rows have ties among their top four
      const z =
        trial % 2
          ? Float32Array.from({ length: B * K }, () => Math.round(rng.uniform() * 4))
          : rng.fillNormal(new Float32Array(B * K), 0, 3);
      const y = Int32Array.from({ length: B }, () => rng.int(K));
      const t = Int32Array.from(y, (v) => (v + 1 + rng.int(K - 1)) % K);
      const w = rng.fillNormal(new Float32Array(B), 0, 1);
      const [logits, labels, targets, weights] = [tf.tensor2d(z, [B, K]), tf.tensor1d(y, 'int32'), tf.tensor1d(t, 'int32'), tf.tensor1d(w)];
      const run = (f: typeof dlrTargetedLossPerExample) =>
        tf.tidy(() => {
          const g = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(f(l as tf.Tensor2D, labels, targets), weights)))(logits);
          return { value: Array.from(f(logits, labels, targets).dataSync()), grad: Array.from(g.dataSync()) };
        });
      const custom = run(dlrTargetedLossPerExample);
      const composed = run(dlrTargetedLossComposed);
      expect(custom.value).toEqual(composed.value);
      expect(custom.grad).toEqual(composed.grad);
      const hand = byHand(z, y, t, K);
      custom.value.forEach((v, i) => expect(Math.abs(v - hand.value[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(hand.value[i]))));
      custom.grad.forEach((v, i) => {
        const want = hand.grad[i] * w[Math.floor(i / K)];
        expect(Math.abs(v - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
      });
      tf.dispose([logits, labels, targets, weights]);
    }
    expect(tf.memory().numTensors).toBe(base);
  });
});
