import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng';
import type { RandomStart } from './types';

/** The standard deviation of the Gaussian start of TRADES, PGD-ℓ2 and MART: x + 0.001·N(0, I) (docs/algorithms.md §4.2, §4.3). */
export const NORMAL_START_STD = 0.001;

/**
 * The first iterate x'_0 (docs/algorithms.md §4, §12.2). Noise is drawn on the JS side from `new Rng(seed)`
 * so that it is identical on every backend. Returns a new tensor (also for 'none').
 *   'uniform'          x + U(−ε, ε)                (eval PGD, loss.py PGD_TE)
 *   'uniform-clamped'  clamp(x + U(−ε, ε), 0, 1)   (train.py PGD-AT)
 *   'normal'           x + 0.001·N(0, I)           (TRADES, PGD-ℓ2, MART)
 *   'normal-clamped'   clamp(x + 0.001·N(0, I), 0, 1)
 */
export function startPoint(x: tf.Tensor4D, eps: number, kind: RandomStart, seed: number): tf.Tensor4D {
  if (kind === 'none') return tf.clone(x);
  const noise = new Float32Array(x.size);
  const rng = new Rng(seed);
  if (kind === 'uniform' || kind === 'uniform-clamped') rng.fillUniform(noise, -eps, eps);
  else rng.fillNormal(noise, 0, NORMAL_START_STD);
  return tf.tidy(() => {
    const start = tf.add(x, tf.tensor(noise, x.shape, 'float32')) as tf.Tensor4D;
    return kind.endsWith('-clamped') ? (tf.clipByValue(start, 0, 1) as tf.Tensor4D) : start;
  });
}
