import * as tf from '@tensorflow/tfjs';
import type { Model, NamedVariable } from '../core/model';
import type { EpochRecord } from '../core/records';
import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';

/**
 * Complexity measures of a model's weights (docs/algorithms.md §9 candidates), computed generically from
 * its named parameters (PyTorch state_dict names, tfjs layouts). docs/schema.md gives each formula.
 *
 * Which tensors count:
 *  - weight matrices: parameters of rank ≥ 2 (conv kernels HWIO [k,k,in,out], dense [in,out]),
 *    each viewed as the (in·k·k) × out matrix W_l (the transpose of PyTorch's out × (in·k·k) view:
 *    same singular values and Frobenius norm);
 *  - biases: rank-1 parameters named '*.bias' whose module has no running statistics;
 *  - BatchNorm: rank-1 '<m>.weight' / '<m>.bias' with buffers '<m>.running_mean' / '<m>.running_var'.
 * The norm-based measures use the weight matrices only (BatchNorm excluded, as in Jiang et al. 2020);
 * the path norm folds eval-mode BatchNorm in as the per-channel linear map x ↦ γ/√(var+ε)·x.
 */
export type ComplexityMeasure = 'frobenius' | 'spectral' | 'spectral_complexity' | 'path_norm' | 'sharpness' | 'gaps';

export const ALL_MEASURES: readonly ComplexityMeasure[] = [
  'frobenius',
  'spectral',
  'spectral_complexity',
  'path_norm',
  'sharpness',
  'gaps',
];

export interface SharpnessOptions {
  /** The robust loss on a fixed batch with a fixed attack seed, e.g. PGD-10 CE; evaluated in eval mode by the caller. */
  readonly loss: (model: Model) => number | Promise<number>;
  /** Relative noise scale: each weight w gets σ·|w|·N(0,1) (default 0.01). */
  readonly sigma?: number;
  /** Number of noise draws; the maximum and mean increase are reported (default 5). */
  readonly draws?: number;
}

export interface ComplexityOptions {
  /** Which measures (default: all whose inputs are given). */
  readonly measures?: readonly ComplexityMeasure[];
  /** Run seed: power-iteration start vectors and sharpness noise derive from it. */
  readonly seed: number;
  readonly epoch: number;
  /** Power iterations per matrix (default 100). */
  readonly powerIterations?: number;
  /** BatchNorm ε for the path norm (default 1e-5, PyTorch's and src/models'). */
  readonly bnEpsilon?: number;
  /** Per-example margins (logit of the label minus the largest other logit), e.g. eval-phase margin_clean. */
  readonly margins?: Float32Array;
  /** Quantile of the margins used as γ (default 0.1). */
  readonly marginQuantile?: number;
  readonly sharpness?: SharpnessOptions;
  /** The epoch's record, for the generalization gaps. */
  readonly epochRecord?: EpochRecord;
}

export interface WeightMatrix {
  readonly name: string;
  readonly variable: tf.Variable;
  /** rows × cols = (in·k·k) × out */
  readonly rows: number;
  readonly cols: number;
}

const isRunningStat = (n: string) => /\.(running_mean|running_var|num_batches_tracked)$/.test(n);
const moduleOf = (n: string) => n.replace(/\.[^.]+$/, '');

/** The rank ≥ 2 parameters as (in·k·k) × out matrices, in parameter order. */
export function weightMatrices(model: Model): WeightMatrix[] {
  return model.parameters
    .filter((p) => p.variable.rank >= 2)
    .map((p) => {
      const shape = p.variable.shape;
      const cols = shape[shape.length - 1];
      return { name: p.name, variable: p.variable, rows: p.variable.size / cols, cols };
    });
}

/** Modules with BatchNorm running statistics: module name → { gamma, beta, mean, variance }. */
function batchNorms(
  model: Model,
): Map<string, { gamma?: NamedVariable; beta?: NamedVariable; mean: NamedVariable; variance: NamedVariable }> {
  const out = new Map<string, { gamma?: NamedVariable; beta?: NamedVariable; mean: NamedVariable; variance: NamedVariable }>();
  for (const b of model.buffers) {
    if (!b.name.endsWith('.running_mean')) continue;
    const m = moduleOf(b.name);
    const variance = model.buffers.find((x) => x.name === `${m}.running_var`);
    if (!variance) continue;
    out.set(m, {
      mean: b,
      variance,
      gamma: model.parameters.find((p) => p.name === `${m}.weight`),
      beta: model.parameters.find((p) => p.name === `${m}.bias`),
    });
  }
  return out;
}

/** ‖W‖_F of each matrix (float64 accumulation over the float32 values). */
export function frobeniusNorms(model: Model): number[] {
  return weightMatrices(model).map((w) => {
    const v = w.variable.dataSync();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i] * v[i];
    return Math.sqrt(s);
  });
}

/**
 * Largest singular value of a rows × cols matrix by power iteration on WᵀW, from a seeded Gaussian
 * start vector (deriveSeed(seed, 'complexity-power-iteration', index)). float32 tf ops.
 */
export function spectralNorm(w: tf.Tensor, rows: number, cols: number, seed: number, iterations = 100): number {
  const start = new Rng(seed).fillNormal(new Float32Array(cols));
  return tf.tidy(() => {
    const W = w.reshape([rows, cols]) as tf.Tensor2D;
    let v = tf.tensor2d(start, [cols, 1]);
    v = tf.div(v, tf.norm(v));
    for (let i = 0; i < iterations; i++) {
      const u = tf.matMul(W, v);
      const next = tf.matMul(W, u, true, false);
      const n = tf.norm(next);
      v.dispose();
      v = tf.div(next, tf.maximum(n, 1e-30));
      u.dispose();
      next.dispose();
      n.dispose();
    }
    return tf.norm(tf.matMul(W, v)).dataSync()[0];
  });
}

/** ‖Wᵀ‖_{2,1} = Σ over output units o of the ℓ2 norm of its incoming weights W[:, o]. */
export function norm21(w: WeightMatrix): number {
  const v = w.variable.dataSync();
  const acc = new Float64Array(w.cols);
  for (let i = 0; i < v.length; i++) acc[i % w.cols] += v[i] * v[i];
  let s = 0;
  for (let o = 0; o < w.cols; o++) s += Math.sqrt(acc[o]);
  return s;
}

/** The q-quantile of the margins (linear interpolation between order statistics, as numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const xs = Array.from(values)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  if (xs.length === 0) return NaN;
  const pos = q * (xs.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

/** Runs `fn` with every parameter and buffer temporarily replaced, then restores the exact values. */
async function withTemporaryWeights<T>(
  model: Model,
  replace: (all: NamedVariable[]) => Map<tf.Variable, tf.Tensor>,
  fn: () => T | Promise<T>,
): Promise<T> {
  const all = [...model.parameters, ...model.buffers];
  const saved = new Map(all.map((p) => [p.variable, tf.clone(p.variable)]));
  const repl = replace(all);
  try {
    for (const [v, t] of repl) v.assign(t);
    return await fn();
  } finally {
    for (const t of repl.values()) t.dispose();
    for (const [v, t] of saved) {
      v.assign(t);
      t.dispose();
    }
  }
}

/**
 * Path norm (Neyshabur et al. 2015): Σ over input→output paths of Π w² — the summed logits of the
 * network evaluated (eval mode) on an all-ones input with every weight squared, biases and BatchNorm
 * shifts zeroed and each BatchNorm replaced by the scale (γ/√(var+ε))². ReLUs pass everything (all
 * activations are ≥ 0); average pooling is linear, max pooling keeps the largest path sum.
 */
export async function pathNormSq(model: Model, bnEpsilon = 1e-5): Promise<number> {
  const bns = batchNorms(model);
  const bnParam = new Set<string>();
  for (const [m, b] of bns) {
    if (b.gamma) bnParam.add(b.gamma.name);
    if (b.beta) bnParam.add(b.beta.name);
    bnParam.add(`${m}.running_mean`);
    bnParam.add(`${m}.running_var`);
  }
  return withTemporaryWeights(
    model,
    (all) => {
      const out = new Map<tf.Variable, tf.Tensor>();
      for (const p of all) {
        if (isRunningStat(p.name) || bnParam.has(p.name)) continue;
        out.set(p.variable, p.variable.rank >= 2 ? tf.square(p.variable) : tf.zerosLike(p.variable));
      }
      for (const [, b] of bns) {
        // eval BN: γ·(x − μ)/√(var+ε) + β  →  with μ = 0, β = 0, var kept and γ' = a²·√(var+ε): a²·x
        tf.tidy(() => {
          const sd = tf.sqrt(tf.add(b.variance.variable, bnEpsilon));
          const a = b.gamma ? tf.div(b.gamma.variable, sd) : tf.div(1, sd);
          const g = tf.mul(tf.square(a), sd);
          if (b.gamma) out.set(b.gamma.variable, tf.keep(g));
          else if (!tf.equal(g, tf.onesLike(g)).all().dataSync()[0]) {
            throw new AtflowError('SHAPE', `path norm: BatchNorm '${moduleOf(b.mean.name)}' has no affine weight to fold its scale into`);
          }
          if (b.beta) out.set(b.beta.variable, tf.keep(tf.zerosLike(b.beta.variable)));
          out.set(b.mean.variable, tf.keep(tf.zerosLike(b.mean.variable)));
        });
      }
      return out;
    },
    () =>
      tf.tidy(() => {
        const x = tf.ones([1, ...model.inputShape]) as tf.Tensor4D;
        return tf.sum(model.apply(x, 'eval')).dataSync()[0];
      }),
  );
}

/**
 * Sharpness: the robust-loss increase under multiplicative Gaussian weight noise,
 * max and mean over `draws` of L(w + σ·|w|⊙ε) − L(w), ε ~ N(0, I) drawn from
 * Rng(deriveSeed(seed, 'complexity-sharpness', epoch, draw)); parameters only (not BN buffers).
 * The weights are restored bit for bit afterwards.
 */
export async function sharpness(
  model: Model,
  opts: SharpnessOptions & { seed: number; epoch: number },
): Promise<{ max: number; mean: number; base: number }> {
  const sigma = opts.sigma ?? 0.01;
  const draws = opts.draws ?? 5;
  const base = await opts.loss(model);
  let max = -Infinity;
  let sum = 0;
  for (let d = 0; d < draws; d++) {
    const rng = new Rng(deriveSeed(opts.seed, 'complexity-sharpness', opts.epoch, d));
    const loss = await withTemporaryWeights(
      model,
      () => {
        const out = new Map<tf.Variable, tf.Tensor>();
        for (const p of model.parameters) {
          const eps = rng.fillNormal(new Float32Array(p.variable.size));
          out.set(
            p.variable,
            tf.tidy(() => tf.add(p.variable, tf.mul(tf.mul(tf.abs(p.variable), sigma), tf.tensor(eps, p.variable.shape)))),
          );
        }
        return out;
      },
      () => opts.loss(model),
    );
    max = Math.max(max, loss - base);
    sum += loss - base;
  }
  return { max, mean: sum / draws, base };
}

/**
 * All requested measures as one flat record (the `complexity` event's `measures`; one row each in
 * complexity.parquet). Measures whose inputs are missing (sharpness without a loss, gaps without an
 * epoch record, margin ratios without margins) are left out.
 */
export async function complexityMeasures(model: Model, options: ComplexityOptions): Promise<Record<string, number>> {
  const want = new Set(options.measures ?? ALL_MEASURES);
  const out: Record<string, number> = {};
  const mats = weightMatrices(model);
  if (mats.length === 0) throw new AtflowError('SHAPE', `model '${model.name}' has no weight matrices (parameters of rank ≥ 2)`);
  out.num_weight_matrices = mats.length;
  if (want.has('frobenius')) {
    const f = frobeniusNorms(model);
    out.frobenius_sum = f.reduce((a, b) => a + b, 0);
    out.frobenius_sq_sum = f.reduce((a, b) => a + b * b, 0);
    out.log_frobenius_prod = f.reduce((a, b) => a + Math.log(b), 0);
    out.frobenius_prod = Math.exp(out.log_frobenius_prod);
  }
  let spectral: number[] | null = null;
  if (want.has('spectral') || want.has('spectral_complexity')) {
    spectral = mats.map((w, i) =>
      spectralNorm(
        w.variable,
        w.rows,
        w.cols,
        deriveSeed(options.seed, 'complexity-power-iteration', options.epoch, i),
        options.powerIterations ?? 100,
      ),
    );
    out.log_spectral_prod = spectral.reduce((a, b) => a + Math.log(b), 0);
    out.spectral_prod = Math.exp(out.log_spectral_prod);
  }
  if (want.has('spectral_complexity') && spectral) {
    const ratios = mats.map((w, i) => Math.pow(norm21(w) / spectral![i], 2 / 3));
    out.spectral_complexity =
      out.spectral_prod *
      Math.pow(
        ratios.reduce((a, b) => a + b, 0),
        1.5,
      );
    if (options.margins && options.margins.length > 0) {
      const q = options.marginQuantile ?? 0.1;
      const gamma = quantile(options.margins, q);
      out.margin_quantile = gamma;
      out.spectral_complexity_over_margin = gamma > 0 ? out.spectral_complexity / gamma : NaN;
    }
  }
  if (want.has('path_norm')) {
    out.path_norm_sq = await pathNormSq(model, options.bnEpsilon ?? 1e-5);
    out.path_norm = Math.sqrt(out.path_norm_sq);
  }
  if (want.has('sharpness') && options.sharpness) {
    const s = await sharpness(model, { ...options.sharpness, seed: options.seed, epoch: options.epoch });
    out.sharpness_max = s.max;
    out.sharpness_mean = s.mean;
    out.sharpness_base_loss = s.base;
  }
  if (want.has('gaps') && options.epochRecord) {
    const r = options.epochRecord;
    out.standard_generalization_gap = r.train_clean_acc - r.test_clean_acc;
    out.robust_generalization_gap = r.train_robust_acc - r.test_robust_acc;
  }
  return out;
}
