import * as tf from '@tensorflow/tfjs';
import type { Model } from '../core/model';
import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import type { Trainer } from '../algorithms/trainers/types';

/**
 * The gradient-instability probe of docs/algorithms.md §8.2 (the [UNVERIFIED] implementable version):
 *   Δ(α) = ‖∇L(θ + α·d) − ∇L(θ)‖₂ / ‖∇L(θ)‖₂
 * over a log grid of α, with L the trainer's full training loss on a fixed batch, its inner attack
 * recomputed at θ + α·d with the same attack seed, and d a seeded Gaussian direction normalised per
 * tensor to ‖d_l‖ = ‖θ_l‖ (filter-wise scale). Gradients are over every learnable parameter.
 */
export interface ProbeObjective {
  /**
   * Runs once per weight setting, outside the gradient tape (e.g. the trainer's attack at the current
   * weights). Whatever tensors it returns are passed to `loss` and disposed afterwards.
   */
  prepare?(model: Model): tf.Tensor | tf.Tensor[] | null;
  /** The scalar loss, differentiated w.r.t. model.parameters. */
  loss(model: Model, prepared: tf.Tensor | tf.Tensor[] | null): tf.Scalar;
}

/** A loss function `(model) => scalar` (differentiated as is), or an objective with a separate attack step. */
export type ProbeLoss = ((model: Model) => tf.Scalar) | ProbeObjective;

export interface GradientProbeOptions {
  /** Seed of the direction d (deriveSeed(seed, 'gradient-probe-direction', tensorIndex)). */
  readonly seed: number;
  /** α grid (default 1e-5 … 1e-1, 9 points, log-spaced). */
  readonly alphas?: readonly number[];
  /**
   * 'recomputed' (default): the objective's `prepare` (the inner attack) runs again at every θ + α·d.
   * 'fixed': it runs once, at θ, and every α reuses its output, so Δ(α) measures the outer loss alone:
   * if the instability comes from the inner maximization, the gap between the methods closes here.
   */
  readonly adversarial?: ProbeAdversarial;
}

export type ProbeAdversarial = 'recomputed' | 'fixed';

export interface GradientProbeRow {
  readonly alpha: number;
  readonly delta: number;
  /** ‖∇L(θ+αd)‖ */
  readonly grad_norm: number;
  /** ‖∇L(θ)‖ */
  readonly grad_norm_base: number;
  readonly loss: number;
  readonly loss_base: number;
}

export function logGrid(from: number, to: number, points: number): number[] {
  if (!(from > 0 && to > from && points >= 2))
    throw new AtflowError('ARGUMENT', `log grid needs 0 < from < to and ≥ 2 points, got ${from}, ${to}, ${points}`);
  return Array.from({ length: points }, (_, i) => from * Math.pow(to / from, i / (points - 1)));
}

export const DEFAULT_ALPHAS: readonly number[] = logGrid(1e-5, 1e-1, 9);

function asObjective(objective: ProbeLoss): ProbeObjective {
  return typeof objective === 'function' ? { loss: (m) => objective(m) } : objective;
}

/**
 * Gradient and loss at the model's current weights; buffers (BN running stats) are restored after.
 * `fixed`: the prepared tensors to use instead of running `prepare` (owned by the caller).
 */
function gradientAt(
  model: Model,
  obj: ProbeObjective,
  fixed?: { prepared: tf.Tensor | tf.Tensor[] | null },
): { grads: tf.Tensor[]; loss: number } {
  const savedBuffers = model.buffers.map((b) => tf.clone(b.variable));
  const own = fixed === undefined;
  const prepared = fixed ? fixed.prepared : obj.prepare ? obj.prepare(model) : null;
  try {
    const vars = model.parameters.map((p) => p.variable);
    const { value, grads } = tf.variableGrads(() => obj.loss(model, prepared), vars);
    const loss = value.dataSync()[0];
    value.dispose();
    // variableGrads keys by variable name; return in parameter order
    return { grads: vars.map((v) => grads[v.name]), loss };
  } finally {
    if (own && prepared) tf.dispose(prepared);
    // the train-mode forward updated BatchNorm's running statistics: every α must see the same ones
    model.buffers.forEach((b, i) => b.variable.assign(savedBuffers[i]));
    tf.dispose(savedBuffers);
  }
}

/** Runs the probe; the model's parameters and buffers are restored exactly afterwards. */
export function gradientProbe(model: Model, objective: ProbeLoss, options: GradientProbeOptions): GradientProbeRow[] {
  const alphas = options.alphas ?? DEFAULT_ALPHAS;
  const params = model.parameters;
  const theta0 = params.map((p) => tf.clone(p.variable));
  const directions = params.map((p, i) =>
    tf.tidy(() => {
      const eps = tf.tensor(
        new Rng(deriveSeed(options.seed, 'gradient-probe-direction', i)).fillNormal(new Float32Array(p.variable.size)),
        p.variable.shape,
      );
      const scale = tf.div(tf.norm(p.variable), tf.maximum(tf.norm(eps), 1e-30));
      return tf.mul(eps, scale);
    }),
  );
  const obj = asObjective(objective);
  // 'fixed': the attack at θ (prepare runs with the unperturbed weights and buffers), reused for every α
  let fixed: { prepared: tf.Tensor | tf.Tensor[] | null } | undefined;
  if ((options.adversarial ?? 'recomputed') === 'fixed') {
    const savedBuffers = model.buffers.map((b) => tf.clone(b.variable));
    fixed = { prepared: obj.prepare ? obj.prepare(model) : null };
    model.buffers.forEach((b, i) => b.variable.assign(savedBuffers[i]));
    tf.dispose(savedBuffers);
  }
  const base = gradientAt(model, obj, fixed);
  const baseNorm = Math.sqrt(base.grads.reduce((s, g) => s + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
  const rows: GradientProbeRow[] = [];
  try {
    for (const alpha of alphas) {
      params.forEach((p, i) => {
        const next = tf.tidy(() => tf.add(theta0[i], tf.mul(directions[i], alpha)));
        p.variable.assign(next);
        next.dispose(); // assign shares the data; the variable keeps its own reference
      });
      const g = gradientAt(model, obj, fixed);
      let diff = 0;
      let norm = 0;
      g.grads.forEach((gi, i) => {
        diff += tf.tidy(() => tf.sum(tf.square(tf.sub(gi, base.grads[i]))).dataSync()[0]);
        norm += tf.tidy(() => tf.sum(tf.square(gi)).dataSync()[0]);
      });
      tf.dispose(g.grads);
      rows.push({
        alpha,
        delta: Math.sqrt(diff) / baseNorm,
        grad_norm: Math.sqrt(norm),
        grad_norm_base: baseNorm,
        loss: g.loss,
        loss_base: base.loss,
      });
    }
  } finally {
    params.forEach((p, i) => p.variable.assign(theta0[i]));
    tf.dispose([...theta0, ...directions, ...base.grads]);
    if (fixed?.prepared) tf.dispose(fixed.prepared);
  }
  return rows;
}

/**
 * A trainer's full training loss on a fixed batch as a ProbeObjective: the attack (eval mode, fixed
 * attack seed) runs at the current weights outside the tape, then the trainer's loss (train-mode
 * forwards) is differentiated with x′ fixed, exactly as one training step does. TE is off (te: null).
 */
export function trainerObjective(trainer: Trainer, x: tf.Tensor4D, y: tf.Tensor1D, attackSeed: number): ProbeObjective {
  return {
    prepare: (model) => {
      const logitsNatEval = tf.tidy(() => model.apply(x, 'eval'));
      try {
        return trainer.attack({ model, x, y, seed: attackSeed, logitsNatEval, te: null });
      } finally {
        logitsNatEval.dispose();
      }
    },
    loss: (model, xAdv) => trainer.loss({ model, x, xAdv: xAdv as tf.Tensor4D, y, te: null }).loss,
  };
}
