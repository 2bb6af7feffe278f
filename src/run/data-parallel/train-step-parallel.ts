import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { applyUpdate } from '../../algorithms/train-step';
import type { Model } from '../../core/model';
import type { Sgd } from '../../algorithms/optim/sgd';
import type { DataParallelPool, PoolStepInput } from './pool';
import type { ShareResult } from './protocol';
import { variablesByName } from './state-layout';
import { BN_MOMENTUM } from '../../models/layers/batch-norm';

export interface ParallelStepResult {
  /** Full-batch loss: the share losses weighted by share size (each is a mean over its share). */
  readonly loss: number;
  /** Σ‖∇W‖²_F of the averaged gradient, before weight decay (as the `train` operator's grad_norm_sq). */
  readonly gradNormSq: number;
  /** Concatenated over shares, batch order, [B·K]. */
  readonly logitsNatEval: Float32Array;
  readonly logitsNat: Float32Array | null;
  readonly logitsAdv: Float32Array;
  readonly tePenalty: Float32Array | null;
  /** Slowest worker's attack and gradient milliseconds. */
  readonly attackMs: number;
  readonly gradMs: number;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * One data-parallel training step. The workers attack and differentiate their shares with the main
 * model's weights; here the share gradients are averaged weighted by share size — each is the gradient
 * of a mean over its share, so the weighted mean is the gradient of the mean over the batch, exactly
 * what the single-thread `train` operator computes (except for BatchNorm: train-mode batch statistics
 * are per share, as in PyTorch DDP without SyncBatchNorm). Then one SGD update of the main model
 * (`optimizer`, torch.optim.SGD semantics, a parameter without gradient is skipped as there). BN
 * running statistics: the exact full-batch running mean and unbiased variance of the activations the
 * shares computed (share means, within- and between-share variance merged: mergedRunningStats);
 * num_batches_tracked comes from worker 0. The pool reads the
 * updated main model at its next step, so every replica starts each step with identical weights.
 * Splitting and merging are this file's; the halves the workers run and the update are the one train
 * step (train-step.ts) the single-thread operators run.
 */
export async function trainStepParallel(
  pool: DataParallelPool,
  model: Model,
  optimizer: Sgd,
  lr: number,
  input: PoolStepInput,
  /** Where in the run this step is, for a NON_FINITE error (the `attackAndTrainParallel` operator's batch). */
  where: { readonly epoch: number; readonly step: number } = { epoch: 0, step: 0 },
): Promise<ParallelStepResult> {
  const { shares, results } = await pool.step(input);
  const B = input.labels.length;
  const weights = shares.map((s) => (s.end - s.start) / B);

  let loss = 0;
  results.forEach((r, k) => (loss += weights[k] * r.loss));

  const paramEntries = pool.layout.entries.filter((e) => e.role === 'parameter');
  const byName = variablesByName(model.parameters, model.buffers);
  const grads: Record<string, tf.Tensor> = {};
  let gradNormSq = 0;
  try {
    paramEntries.forEach((e, i) => {
      const parts = results.map((r) => r.grads[i]);
      if (parts.every((g) => g === null)) return;
      const avg = new Float32Array(e.size);
      results.forEach((r, k) => {
        const g = r.grads[i];
        if (!g) return;
        const w = weights[k];
        for (let j = 0; j < avg.length; j++) avg[j] += w * g[j];
      });
      grads[byName.get(e.name)!.name] = tf.tensor(avg, [...e.shape], 'float32');
    });
    // the same update as the single-thread `train` operator (train-step.ts): norm, finiteness check, SGD
    const nullableConcat = (pick: (r: ShareResult) => Float32Array | null) =>
      results.every((r) => pick(r) !== null) ? concat(results.map((r) => pick(r)!)) : null;
    gradNormSq = applyUpdate({
      optimizer,
      grads,
      loss,
      lr,
      what: 'data-parallel train step:',
      epoch: where.epoch,
      step: where.step,
      indices: input.rowKeys ?? Int32Array.from({ length: B }, (_, i) => i),
      labels: input.labels,
      numClasses: model.numClasses,
      perExample: () => [concat(results.map((r) => r.logitsAdv)), nullableConcat((r) => r.logitsNat), nullableConcat((r) => r.tePenalty)],
    });
  } finally {
    for (const g of Object.values(grads)) g.dispose();
  }
  assignBuffers(pool, byName, results, weights);

  const nullable = (pick: (r: ShareResult) => Float32Array | null) =>
    results.every((r) => pick(r) !== null) ? concat(results.map((r) => pick(r)!)) : null;
  return {
    loss,
    gradNormSq,
    logitsNatEval: concat(results.map((r) => r.logitsNatEval)),
    logitsNat: nullable((r) => r.logitsNat),
    logitsAdv: concat(results.map((r) => r.logitsAdv)),
    tePenalty: nullable((r) => r.tePenalty),
    attackMs: Math.max(...results.map((r) => r.attackMs)),
    gradMs: Math.max(...results.map((r) => r.gradMs)),
  };
}

function assignBuffers(
  pool: DataParallelPool,
  byName: Map<string, tf.Variable>,
  results: readonly ShareResult[],
  weights: readonly number[],
): void {
  const bufferEntries = pool.layout.entries.filter((e) => e.role === 'buffer');
  // BN running statistics: replayed from the main model's values with the full batch's statistics
  const merged = mergedRunningStats(byName, results);
  bufferEntries.forEach((e, i) => {
    let values: Float32Array | Int32Array;
    if (e.dtype === 'int32') values = results[0].buffers[i];
    else if (merged.has(e.name)) values = merged.get(e.name)!;
    else {
      const avg = new Float32Array(e.size);
      results.forEach((r, k) => {
        const b = r.buffers[i];
        for (let j = 0; j < avg.length; j++) avg[j] += weights[k] * b[j];
      });
      values = avg;
    }
    const t = tf.tensor(values, [...e.shape], e.dtype);
    byName.get(e.name)!.assign(t);
    t.dispose();
  });
}

/**
 * The running statistics a single process would record from the activations the shares computed.
 * Every share ran the same train-mode BatchNorm forwards in the same order; forward f of layer L saw
 * c_k values per channel with mean μ_k and biased variance σ²_k on share k. The pooled batch of
 * C = Σ c_k values has mean μ = Σ c_k μ_k / C and biased variance Σ c_k (σ²_k + (μ_k − μ)²) / C (the
 * second term is the variance between shares), and PyTorch keeps the unbiased one, ×C/(C − 1). The
 * updates running ← (1 − m)·running + m·stat are replayed in order from the main model's buffers
 * (the values every worker started the step from), in float64.
 */
function mergedRunningStats(byName: Map<string, tf.Variable>, results: readonly ShareResult[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const forwards = results[0].bnStats;
  if (results.some((r) => r.bnStats.length !== forwards.length || r.bnStats.some((s, f) => s.layer !== forwards[f].layer))) {
    throw new AtflowError('SHAPE', 'data-parallel: the shares ran different BatchNorm forwards; their running statistics cannot be merged');
  }
  const state = new Map<string, { mean: Float64Array; variance: Float64Array }>();
  forwards.forEach((first, f) => {
    const layer = first.layer;
    let st = state.get(layer);
    if (!st) {
      const read = (name: string) => {
        const v = byName.get(name);
        if (!v) throw new AtflowError('SHAPE', `data-parallel: BatchNorm layer '${layer}' has no buffer '${name}'`);
        return Float64Array.from(v.dataSync());
      };
      st = { mean: read(`${layer}.running_mean`), variance: read(`${layer}.running_var`) };
      state.set(layer, st);
    }
    const shares = results.map((r) => r.bnStats[f]);
    const C = shares.reduce((n, s) => n + s.count, 0);
    const m = BN_MOMENTUM;
    for (let c = 0; c < st.mean.length; c++) {
      let mu = 0;
      for (const s of shares) mu += s.count * s.mean[c];
      mu /= C;
      let v = 0;
      for (const s of shares) v += s.count * (s.biasedVariance[c] + (s.mean[c] - mu) ** 2);
      const unbiased = v / (C - 1);
      st.mean[c] = (1 - m) * st.mean[c] + m * mu;
      st.variance[c] = (1 - m) * st.variance[c] + m * unbiased;
    }
  });
  for (const [layer, st] of state) {
    out.set(`${layer}.running_mean`, Float32Array.from(st.mean));
    out.set(`${layer}.running_var`, Float32Array.from(st.variance));
  }
  return out;
}
