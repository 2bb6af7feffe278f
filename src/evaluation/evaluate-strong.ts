import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { apgdCe, apgdDlr } from '../algorithms/attacks/apgd';
import { cwLinf } from '../algorithms/attacks/cw-linf';
import { pgdLinf } from '../algorithms/attacks/pgd-linf';
import { pgdL2 } from '../algorithms/attacks/pgd-l2';
import type { Norm } from '../algorithms/attacks/types';
import { cwObjective } from '../algorithms/objectives/cw-margin';
import type { ThreatModel } from './threat-model';

/** One attack of a final evaluation. */
export interface StrongAttack {
  readonly name: string;
  /** What it is, for final_eval.json: the threat model and the settings (a protocol must be stated). */
  readonly settings?: {
    readonly norm: Norm;
    readonly eps: number;
    readonly alpha?: number;
    readonly steps: number;
    readonly restarts?: number;
    readonly loss: string;
  };
  readonly run: (model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number) => tf.Tensor4D;
}

/**
 * The default final-evaluation suite in the threat model's ball (its norm and ε; the suite's own steps,
 * α = ε/4).
 * ℓ∞: PGD-20, PGD-50 with `restarts` restarts, CW∞-30, APGD-CE-100 and (K ≥ 3 only: DLR divides by
 * z_π1 − z_π3) APGD-DLR-100; α = ε/4 for PGD/CW (2/255 at 8/255).
 * ℓ2: PGD-ℓ2-20, PGD-ℓ2-50 with `restarts` restarts and CW-ℓ2-30 (PGD-ℓ2 on the CW margin), α = ε/4,
 * 0.001·N(0, I) start; then APGD-CE-100 and (K ≥ 3) APGD-DLR-100 in the ℓ2 ball (normalised steps,
 * AutoAttack's ℓ2 projection), as in the ℓ∞ suite.
 */
export function defaultStrongAttacks(threat: ThreatModel, numClasses: number, restarts = 5): StrongAttack[] {
  const { eps, norm } = threat;
  const alpha = eps / 4;
  if (norm === 'l2') {
    const l2: StrongAttack[] = [
      {
        name: 'pgd-l2-20',
        settings: { norm, eps, alpha, steps: 20, loss: 'ce' },
        run: (m, x, y, s) => pgdL2(m, x, y, s, { eps, alpha, steps: 20 }),
      },
      {
        name: `pgd-l2-50x${restarts}`,
        settings: { norm, eps, alpha, steps: 50, restarts, loss: 'ce' },
        run: (m, x, y, s) => pgdL2(m, x, y, s, { eps, alpha, steps: 50, restarts }),
      },
      {
        name: 'cw-l2-30',
        settings: { norm, eps, alpha, steps: 30, loss: 'cw-margin' },
        run: (m, x, y, s) => pgdL2(m, x, y, s, { eps, alpha, steps: 30, objective: cwObjective() }),
      },
      {
        name: 'apgd-ce-l2',
        settings: { norm, eps, steps: 100, loss: 'ce' },
        run: (m, x, y, s) => apgdCe(m, x, y, s, { eps, steps: 100, norm }),
      },
    ];
    if (numClasses >= 3)
      l2.push({
        name: 'apgd-dlr-l2',
        settings: { norm, eps, steps: 100, loss: 'dlr' },
        run: (m, x, y, s) => apgdDlr(m, x, y, s, { eps, steps: 100, norm }),
      });
    return l2;
  }
  const list: StrongAttack[] = [
    {
      name: 'pgd-20',
      settings: { norm, eps, alpha, steps: 20, loss: 'ce' },
      run: (m, x, y, s) => pgdLinf(m, x, y, s, { eps, alpha, steps: 20, randomStart: 'uniform' }),
    },
    {
      name: `pgd-50x${restarts}`,
      settings: { norm, eps, alpha, steps: 50, restarts, loss: 'ce' },
      run: (m, x, y, s) => pgdLinf(m, x, y, s, { eps, alpha, steps: 50, restarts, randomStart: 'uniform' }),
    },
    {
      name: 'cw-30',
      settings: { norm, eps, alpha, steps: 30, loss: 'cw-margin' },
      run: (m, x, y, s) => cwLinf(m, x, y, s, { eps, alpha, steps: 30 }),
    },
    { name: 'apgd-ce', settings: { norm, eps, steps: 100, loss: 'ce' }, run: (m, x, y, s) => apgdCe(m, x, y, s, { eps, steps: 100 }) },
  ];
  if (numClasses >= 3)
    list.push({
      name: 'apgd-dlr',
      settings: { norm, eps, steps: 100, loss: 'dlr' },
      run: (m, x, y, s) => apgdDlr(m, x, y, s, { eps, steps: 100 }),
    });
  return list;
}

export interface StrongEvaluation {
  readonly n: number;
  readonly cleanAcc: number;
  /** Robust accuracy per attack. */
  readonly perAttack: Readonly<Record<string, number>>;
  /** An example counts as robust only if it survives every attack (AutoAttack's ensemble rule). */
  readonly worstCaseAcc: number;
  /** Per example: 1 if robust against all attacks. */
  readonly robust: Uint8Array;
}

function correctOf(model: Model, x: tf.Tensor4D, y: tf.Tensor1D): Uint8Array {
  const t = tf.tidy(() => tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y).cast('int32'));
  const out = Uint8Array.from(t.dataSync());
  t.dispose();
  return out;
}

/** One attack of the strong suite on one batch, starting or finished (progress). */
export interface StrongStep {
  readonly attack: string;
  readonly index: number;
  readonly attacks: number;
  readonly batch: number;
  readonly batches: number;
  readonly phase: 'start' | 'end';
  readonly attacked: number;
  /** The attack's wall time on this batch (0 at 'start'). */
  readonly seconds: number;
  /** Examples done (batches finished) and robust under every attack so far, over them. */
  readonly robustSoFar: number;
}

/**
 * Stronger final evaluation of a model (e.g. the best and final checkpoints) on a set of examples given
 * as host arrays, attacked in batches. The caller owns nothing new afterwards.
 */
export function evaluateStrong(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: { readonly threat: ThreatModel; readonly seed: number; readonly batchSize?: number; readonly attacks?: StrongAttack[] },
): StrongEvaluation {
  const steps = evaluateStrongSteps(model, data, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** evaluateStrong one attack at a time: yields as each attack starts and ends on a batch (no tensor of its own alive then). */
export function* evaluateStrongSteps(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: { readonly threat: ThreatModel; readonly seed: number; readonly batchSize?: number; readonly attacks?: StrongAttack[] },
): Generator<StrongStep, StrongEvaluation, void> {
  const [H, W, C] = model.inputShape;
  const n = data.labels.length;
  if (data.x.length !== n * H * W * C)
    throw new AtflowError('SHAPE', `evaluateStrong: x has ${data.x.length} values, expected ${n}×${H}×${W}×${C}`);
  const attacks = options.attacks ?? defaultStrongAttacks(options.threat, model.numClasses);
  const bs = options.batchSize ?? 200;
  const batches = Math.ceil(n / bs);
  const robust = new Uint8Array(n);
  const clean = new Uint8Array(n);
  const perAttack: Record<string, number> = Object.fromEntries(attacks.map((a) => [a.name, 0]));
  const sum = (a: Uint8Array, end = a.length) => a.subarray(0, end).reduce((s, v) => s + v, 0);
  for (let start = 0, batch = 0; start < n; start += bs, batch++) {
    const end = Math.min(n, start + bs);
    const x = tf.tensor4d(data.x.subarray(start * H * W * C, end * H * W * C), [end - start, H, W, C]);
    const y = tf.tensor1d(data.labels.subarray(start, end), 'int32');
    try {
      const c = correctOf(model, x, y);
      for (let i = 0; i < c.length; i++) {
        clean[start + i] = c[i];
        robust[start + i] = c[i];
      }
      for (let j = 0; j < attacks.length; j++) {
        const a = attacks[j];
        const step = { attack: a.name, index: j, attacks: attacks.length, batch, batches, attacked: end - start };
        yield { ...step, phase: 'start', seconds: 0, robustSoFar: NaN };
        const t0 = performance.now();
        const xAdv = a.run(model, x, y, deriveSeed(options.seed, 'strong-eval', j, start));
        const r = correctOf(model, xAdv, y);
        xAdv.dispose();
        for (let i = 0; i < r.length; i++) {
          perAttack[a.name] += r[i];
          robust[start + i] &= r[i];
        }
        yield { ...step, phase: 'end', seconds: (performance.now() - t0) / 1000, robustSoFar: sum(robust, end) / end };
      }
    } finally {
      tf.dispose([x, y]);
    }
  }
  for (const k of Object.keys(perAttack)) perAttack[k] /= n;
  return { n, cleanAcc: sum(clean) / n, perAttack, worstCaseAcc: sum(robust) / n, robust };
}
