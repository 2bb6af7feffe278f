import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import type { Model } from '../core/model';
import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import type { Trainer } from '../operators/trainers/types';
import { ParquetStreamWriter, readParquetTable, writeFileAtomic } from '../sinks/parquet-writer';
import { renderSvg } from '../sinks/vega-runtime';

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
  if (!(from > 0 && to > from && points >= 2)) throw new AtflowError('ARGUMENT', `log grid needs 0 < from < to and ≥ 2 points, got ${from}, ${to}, ${points}`);
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
function gradientAt(model: Model, obj: ProbeObjective, fixed?: { prepared: tf.Tensor | tf.Tensor[] | null }): { grads: tf.Tensor[]; loss: number } {
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
      const eps = tf.tensor(new Rng(deriveSeed(options.seed, 'gradient-probe-direction', i)).fillNormal(new Float32Array(p.variable.size)), p.variable.shape);
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
      rows.push({ alpha, delta: Math.sqrt(diff) / baseNorm, grad_norm: Math.sqrt(norm), grad_norm_base: baseNorm, loss: g.loss, loss_base: base.loss });
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

const PROBE_COLUMNS = [
  { name: 'run_id', type: 'utf8' },
  { name: 'epoch', type: 'int32' },
  { name: 'trainer', type: 'utf8' },
  { name: 'alpha', type: 'float64' },
  { name: 'delta', type: 'float64', nullable: true },
  { name: 'grad_norm', type: 'float64', nullable: true },
  { name: 'grad_norm_base', type: 'float64', nullable: true },
  { name: 'loss', type: 'float64', nullable: true },
  { name: 'loss_base', type: 'float64', nullable: true },
  { name: 'seed', type: 'int32' },
  { name: 'batch_size', type: 'int32' },
  { name: 'adversarial', type: 'utf8' },
] as const;

export interface ProbeRecord {
  readonly runId: string;
  readonly epoch: number;
  readonly trainer: string;
  readonly seed: number;
  readonly batchSize: number;
  /** Default 'recomputed'. */
  readonly adversarial?: ProbeAdversarial;
  readonly rows: readonly GradientProbeRow[];
}

/**
 * Writes `<runDir>/gradient_probe.parquet` (rows of earlier probes of other epochs or adversarial modes
 * are kept, this epoch's and mode's replaced) and `<runDir>/gradient_probe.svg` (Δ against α, log-log,
 * one line per epoch and mode).
 */
export async function writeGradientProbe(runDir: string, rec: ProbeRecord): Promise<{ parquet: string; svg: string }> {
  const file = path.join(runDir, 'gradient_probe.parquet');
  type Row = { epoch: number; trainer: string; alpha: number; delta: number; grad_norm: number; grad_norm_base: number; loss: number; loss_base: number; seed: number; batch_size: number; run_id: string; adversarial: string };
  const mode = rec.adversarial ?? 'recomputed';
  const keep: Row[] = [];
  if (fs.existsSync(file)) {
    const t = readParquetTable(file);
    for (let i = 0; i < t.numRows; i++) {
      const r = t.get(i)!.toJSON() as unknown as Row;
      // files written before the column existed hold recomputed-attack probes only
      const rowMode = r.adversarial ?? 'recomputed';
      if (r.epoch !== rec.epoch || rowMode !== mode) keep.push({ ...r, adversarial: rowMode });
    }
  }
  const all: Row[] = [
    ...keep,
    ...rec.rows.map((r) => ({ ...r, run_id: rec.runId, epoch: rec.epoch, trainer: rec.trainer, seed: rec.seed, batch_size: rec.batchSize, adversarial: mode })),
  ].sort((a, b) => a.epoch - b.epoch || a.adversarial.localeCompare(b.adversarial) || a.alpha - b.alpha);
  const w = await ParquetStreamWriter.open(file, PROBE_COLUMNS, { metadata: { 'atflow.run_id': rec.runId, 'atflow.probe': 'gradient-instability (docs/algorithms.md §8.2)' } });
  const f64 = (k: keyof Row) => Float64Array.from(all, (r) => (r[k] === null ? NaN : Number(r[k])));
  await w.append(
    {
      run_id: all.map((r) => r.run_id),
      epoch: Int32Array.from(all, (r) => r.epoch),
      trainer: all.map((r) => r.trainer),
      alpha: f64('alpha'),
      delta: f64('delta'),
      grad_norm: f64('grad_norm'),
      grad_norm_base: f64('grad_norm_base'),
      loss: f64('loss'),
      loss_base: f64('loss_base'),
      seed: Int32Array.from(all, (r) => r.seed),
      batch_size: Int32Array.from(all, (r) => r.batch_size),
      adversarial: all.map((r) => r.adversarial),
    },
    all.length,
  );
  await w.close();
  // Δ against α, log-log, one line per probed epoch (a Vega-Lite spec drawn by vega's headless renderer)
  const svg = await renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${rec.runId}: Δ(α) = ‖∇L(θ+αd) − ∇L(θ)‖ / ‖∇L(θ)‖`,
    data: { values: all.filter((r) => r.alpha > 0 && r.delta > 0).map((r) => ({ epoch: `epoch ${r.epoch}${r.adversarial === 'fixed' ? ', fixed x′' : ''}`, alpha: r.alpha, delta: r.delta })) },
    width: 480,
    height: 300,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'alpha', type: 'quantitative', scale: { type: 'log' }, title: 'α' },
      y: { field: 'delta', type: 'quantitative', scale: { type: 'log' }, title: 'Δ(α)' },
      color: { field: 'epoch', type: 'nominal', title: null, legend: { labelLimit: 0 } },
    },
  });
  const svgFile = path.join(runDir, 'gradient_probe.svg');
  writeFileAtomic(svgFile, svg);
  return { parquet: file, svg: svgFile };
}
