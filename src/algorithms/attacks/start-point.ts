import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { deriveSeed, Rng } from '../../core/rng';
import type { RandomStart } from './types';

/** The standard deviation of the Gaussian start of TRADES, PGD-ℓ2 and MART: x + 0.001·N(0, I) (docs/algorithms.md §4.2, §4.3). */
export const NORMAL_START_STD = 0.001;

/**
 * The seed of one example's random start: deriveSeed(attack seed, 'start-row', key), where the key is
 * the example's stable index in its source (the batch's `indices`), or its row in the tensor when the
 * caller gives no keys. Each row has its own stream, so a row's start does not depend on which other
 * rows share its tensor: a batch split over data-parallel workers draws exactly the starts of the
 * whole batch.
 */
export function rowStartSeed(seed: number, key: number): number {
  return deriveSeed(seed, 'start-row', key);
}

/**
 * The first iterate x'_0 (docs/algorithms.md §4, §12.2). Noise is drawn on the JS side, row by row from
 * `new Rng(rowStartSeed(seed, key))`, so that it is identical on every backend and for every split of
 * the batch. Returns a new tensor (also for 'none').
 *   'uniform'          x + U(−ε, ε)                (eval PGD, loss.py PGD_TE)
 *   'uniform-clamped'  clamp(x + U(−ε, ε), 0, 1)   (train.py PGD-AT)
 *   'normal'           x + 0.001·N(0, I)           (TRADES, PGD-ℓ2, MART)
 *   'normal-clamped'   clamp(x + 0.001·N(0, I), 0, 1)
 * `rowKeys[i]` is row i's key (default: i).
 */
export function startPoint(x: tf.Tensor4D, eps: number, kind: RandomStart, seed: number, rowKeys?: ArrayLike<number>): tf.Tensor4D {
  if (kind === 'none') return tf.clone(x);
  const rows = x.shape[0];
  if (rowKeys !== undefined && rowKeys.length !== rows) {
    throw new AtflowError('SHAPE', `random start: ${rowKeys.length} row keys for a batch of ${rows}`, { rows, keys: rowKeys.length });
  }
  const noise = new Float32Array(x.size);
  const perRow = rows === 0 ? 0 : x.size / rows;
  for (let i = 0; i < rows; i++) {
    const rng = new Rng(rowStartSeed(seed, rowKeys === undefined ? i : rowKeys[i]));
    const row = noise.subarray(i * perRow, (i + 1) * perRow);
    if (kind === 'uniform' || kind === 'uniform-clamped') rng.fillUniform(row, -eps, eps);
    else rng.fillNormal(row, 0, NORMAL_START_STD);
  }
  return tf.tidy(() => {
    const start = tf.add(x, tf.tensor(noise, x.shape, 'float32')) as tf.Tensor4D;
    return kind.endsWith('-clamped') ? (tf.clipByValue(start, 0, 1) as tf.Tensor4D) : start;
  });
}
