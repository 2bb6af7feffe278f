import * as tf from '@tensorflow/tfjs';
import type { Model } from '../core/model';
import { deriveSeed, Rng } from '../core/rng';
import { crossEntropy } from '../algorithms/objectives/ce';
import { pgd } from '../algorithms/attacks/pgd';
import type { ThreatModel } from './threat-model';

export interface SanityCheckOptions {
  /** The run's threat model: its PGD attacks, and the random noise is drawn, in its ball. */
  readonly threat: ThreatModel;
  readonly seed: number;
  /** Uniform-noise draws per example for the random-noise check. Default 10. */
  readonly noiseDraws?: number;
  /** Fraction of examples with an exactly zero input gradient that raises a warning. Default 0.1. */
  readonly zeroGradFraction?: number;
}

export interface SanityReport {
  readonly cleanAcc: number;
  readonly pgdAcc: number;
  readonly eps0Acc: number;
  readonly noiseAcc: number;
  readonly zeroGradFraction: number;
  /** Human-readable warnings; empty when nothing looks like gradient masking or a broken attack. */
  readonly warnings: string[];
}

function accuracy(model: Model, x: tf.Tensor4D, y: tf.Tensor1D): { acc: number; correct: Uint8Array } {
  const t = tf.tidy(() => tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y).cast('int32'));
  const correct = Uint8Array.from(t.dataSync());
  t.dispose();
  return { acc: correct.reduce((s, v) => s + v, 0) / correct.length, correct };
}

/**
 * AutoAttack-style checks on one batch (Croce & Hein 2020, "flags" of broken evaluations):
 *  - PGD with ε = 0 must return the clean accuracy (else the attack or the eval mode is broken);
 *  - robust accuracy above clean accuracy;
 *  - exactly zero input gradients of CE for many examples (shattered / saturated gradients);
 *  - uniform noise in the ε-ball fooling examples that PGD did not (random search beating PGD).
 * PGD is the threat model's own (its norm, ε, α, steps, restarts and start); the noise is in its ball:
 * ℓ∞ U(−ε, ε) per pixel, or ℓ2 uniform in the ball (a Gaussian direction scaled to radius ε·u^(1/d), u ~ U(0, 1)).
 * Returns the numbers and the warnings; never throws for a failed check.
 */
export function gradientMaskingChecks(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, options: SanityCheckOptions): SanityReport {
  const { threat } = options;
  const { eps, norm } = threat;
  const warnings: string[] = [];
  const clean = accuracy(model, x, y);

  const x0 = pgd(model, x, y, deriveSeed(options.seed, 'sanity-eps0'), { ...threat, eps: 0 });
  const eps0 = accuracy(model, x0, y);
  x0.dispose();
  if (eps0.acc !== clean.acc)
    warnings.push(
      `PGD with ε = 0 gives accuracy ${eps0.acc.toFixed(4)}, clean accuracy ` +
        `is ${clean.acc.toFixed(4)}: the attack or the model's eval mode is ` +
        `inconsistent`,
    );

  const xAdv = pgd(model, x, y, deriveSeed(options.seed, 'sanity-pgd'), threat);
  const pgdRes = accuracy(model, xAdv, y);
  xAdv.dispose();
  if (pgdRes.acc > clean.acc)
    warnings.push(
      `robust accuracy ${pgdRes.acc.toFixed(4)} is above clean accuracy ` +
        `${clean.acc.toFixed(4)}: possible gradient masking or a broken attack`,
    );

  const gradNorms = tf.tidy(() => {
    const g = tf.grad((xx: tf.Tensor) => crossEntropy(model.apply(xx as tf.Tensor4D, 'eval'), y))(x);
    return tf.sum(tf.abs(g), [1, 2, 3]);
  });
  const gn = gradNorms.dataSync();
  gradNorms.dispose();
  const zeroFrac = Array.from(gn).filter((v) => v === 0).length / gn.length;
  if (zeroFrac >= (options.zeroGradFraction ?? 0.1)) {
    warnings.push(
      `${(zeroFrac * 100).toFixed(1)}% of examples have an exactly zero ` +
        `input gradient: gradient masking (saturated or shattered gradients)`,
    );
  }

  // random noise: an example counts as fooled if any draw in the ε-ball misclassifies it
  const draws = options.noiseDraws ?? 10;
  const rng = new Rng(deriveSeed(options.seed, 'sanity-noise'));
  const noiseCorrect = Uint8Array.from(clean.correct);
  for (let d = 0; d < draws; d++) {
    const noise =
      norm === 'l2' ? l2BallNoise(rng, x.shape[0], x.size / x.shape[0], eps) : rng.fillUniform(new Float32Array(x.size), -eps, eps);
    const xn = tf.tidy(() => tf.clipByValue(tf.add(x, tf.tensor(noise, x.shape)), 0, 1) as tf.Tensor4D);
    const r = accuracy(model, xn, y);
    xn.dispose();
    for (let i = 0; i < noiseCorrect.length; i++) noiseCorrect[i] &= r.correct[i];
  }
  const noiseAcc = noiseCorrect.reduce((s, v) => s + v, 0) / noiseCorrect.length;
  let beaten = 0;
  for (let i = 0; i < noiseCorrect.length; i++) if (!noiseCorrect[i] && pgdRes.correct[i]) beaten++;
  if (noiseAcc < pgdRes.acc) {
    warnings.push(
      `uniform noise in the ε-ball (${draws} draws) gives accuracy ` +
        `${noiseAcc.toFixed(4)}, below PGD's ${pgdRes.acc.toFixed(4)} (${beaten} ` +
        `examples fooled by noise but not by PGD): gradient masking`,
    );
  }
  return { cleanAcc: clean.acc, pgdAcc: pgdRes.acc, eps0Acc: eps0.acc, noiseAcc, zeroGradFraction: zeroFrac, warnings };
}

/** `n` draws uniform in the ℓ2 ball of radius ε in `d` dimensions, row after row. */
function l2BallNoise(rng: Rng, n: number, d: number, eps: number): Float32Array {
  const out = rng.fillNormal(new Float32Array(n * d), 0, 1);
  for (let i = 0; i < n; i++) {
    const row = out.subarray(i * d, (i + 1) * d);
    let sq = 0;
    for (let k = 0; k < d; k++) sq += row[k] * row[k];
    const scale = (eps * Math.pow(rng.uniform(), 1 / d)) / Math.max(Math.sqrt(sq), 1e-12);
    for (let k = 0; k < d; k++) row[k] *= scale;
  }
  return out;
}
