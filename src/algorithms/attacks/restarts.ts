import * as tf from '@tensorflow/tfjs';
import type { Model } from '../../core/model';
import { crossEntropyPerExample } from '../objectives/ce';
import type { AttackObjective } from './types';

/** Per-example objective values at x' (eval mode): the objective's per-example share, else per-example CE. */
export function perExampleObjective(model: Model, xAdv: tf.Tensor4D, y: tf.Tensor1D, objective: AttackObjective): tf.Tensor1D {
  return tf.tidy(() => {
    const logits = model.apply(xAdv, 'eval');
    return objective.perExample ? objective.perExample(logits, y) : crossEntropyPerExample(logits, y);
  });
}

/**
 * Runs `attackOnce(r)` for r = 0..restarts−1 and keeps, per example, the x' whose per-example objective is
 * highest (a later restart wins ties, as `max_delta[all_loss >= max_loss] = delta` in Rice et al.).
 * Each run's result is owned here and disposed once merged.
 */
export function bestOverRestarts(
  model: Model,
  y: tf.Tensor1D,
  objective: AttackObjective,
  restarts: number,
  attackOnce: (restart: number) => tf.Tensor4D,
): tf.Tensor4D {
  let best = attackOnce(0);
  if (restarts <= 1) return best;
  let bestLoss = perExampleObjective(model, best, y, objective);
  for (let r = 1; r < restarts; r++) {
    const candidate = attackOnce(r);
    const loss = perExampleObjective(model, candidate, y, objective);
    const [nextBest, nextLoss] = tf.tidy(() => {
      const better = tf.greaterEqual(loss, bestLoss);
      const mask = tf.broadcastTo(tf.reshape(better, [better.shape[0], 1, 1, 1]), best.shape);
      return [tf.where(mask, candidate, best) as tf.Tensor4D, tf.where(better, loss, bestLoss) as tf.Tensor1D] as const;
    });
    tf.dispose([best, bestLoss, candidate, loss]);
    best = nextBest;
    bestLoss = nextLoss;
  }
  bestLoss.dispose();
  return best;
}
