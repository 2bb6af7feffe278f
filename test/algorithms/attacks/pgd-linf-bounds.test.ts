import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { Rng } from '../../../src/core/rng';
import { projectLinf } from '../../../src/algorithms/attacks/pgd-linf';

/**
 * pgdLinfSteps clamps each iterate to [clip(x−ε, 0, 1), clip(x+ε, 0, 1)] computed once per attack instead
 * of projectLinf's min(max(v, x−ε), x+ε) then clip to [0, 1] (docs/algorithms.md §4.1). The identity it relies
 * on, checked bit for bit against projectLinf (the paper's formula), including x outside [0, 1], values
 * far outside the ball, and ε = 0.
 */
describe.each(['cpu', 'wasm'] as const)('the ℓ∞ projection as one clamp on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  test.each([0, 8 / 255, 0.3])('eps %f', (eps) => {
    const rng = new Rng(17);
    const n = 4 * 5 * 5 * 3;
    const xs = rng.fillUniform(new Float32Array(n), -0.2, 1.2); // some rows outside [0, 1]
    const vs = rng.fillUniform(new Float32Array(n), -0.5, 1.5);
    tf.tidy(() => {
      const x = tf.tensor4d(xs, [4, 5, 5, 3]);
      const v = tf.tensor4d(vs, [4, 5, 5, 3]);
      const paper = projectLinf(v, x, eps).dataSync();
      const lo = tf.clipByValue(tf.sub(x, eps), 0, 1);
      const hi = tf.clipByValue(tf.add(x, eps), 0, 1);
      const oneClamp = tf.minimum(tf.maximum(v, lo), hi).dataSync();
      expect(Array.from(oneClamp)).toEqual(Array.from(paper));
    });
  });
});
