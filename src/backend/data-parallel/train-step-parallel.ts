import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import { nonFiniteRows } from '../../operators/train';
import type { Model } from '../../core/model';
import type { Sgd } from '../../operators/optim/sgd';
import type { DataParallelPool, PoolStepInput } from './pool';
import type { ShareResult } from './protocol';
import { variablesByName } from './state-layout';

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
 * are per share, as in PyTorch DataParallel). Then one SGD update of the main model (`optimizer`,
 * torch.optim.SGD semantics, a parameter without gradient is skipped as there). BN running statistics:
 * running_mean / running_var become the share-size-weighted mean of the workers' values (each worker
 * applied the same momentum update from the same start, so this is the update with the mean of the
 * share statistics); integer buffers (num_batches_tracked) come from worker 0. The pool reads the
 * updated main model at its next step, so every replica starts each step with identical weights.
 */
export async function trainStepParallel(pool: DataParallelPool, model: Model, optimizer: Sgd, lr: number, input: PoolStepInput): Promise<ParallelStepResult> {
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
    // float32 on the device, as the `train` operator computes it (float64 here would differ in the 5th digit)
    const gradList = Object.values(grads);
    if (gradList.length) {
      const normT = tf.tidy(() => tf.addN(gradList.map((g) => tf.sum(tf.square(g)))));
      gradNormSq = normT.dataSync()[0];
      normT.dispose();
    }
    if (!Number.isFinite(loss) || !Number.isFinite(gradNormSq)) {
      // batch rows with non-finite values; the operator turns them into epoch, step and example indices
      const arrays = [concat(results.map((r) => r.logitsAdv)), ...(results.every((r) => r.logitsNat) ? [concat(results.map((r) => r.logitsNat!))] : [])];
      const rows = nonFiniteRows(B, model.numClasses, input.labels, arrays);
      throw new AtflowError('NON_FINITE', `data-parallel train step: loss ${loss} / squared gradient norm ${gradNormSq}`, { loss, gradNormSq, rows });
    }
    optimizer.step(grads, lr);
  } finally {
    for (const g of Object.values(grads)) g.dispose();
  }
  assignBuffers(pool, byName, results, weights);

  const nullable = (pick: (r: ShareResult) => Float32Array | null) => (results.every((r) => pick(r) !== null) ? concat(results.map((r) => pick(r)!)) : null);
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

function assignBuffers(pool: DataParallelPool, byName: Map<string, tf.Variable>, results: readonly ShareResult[], weights: readonly number[]): void {
  const bufferEntries = pool.layout.entries.filter((e) => e.role === 'buffer');
  bufferEntries.forEach((e, i) => {
    let values: Float32Array | Int32Array;
    if (e.dtype === 'int32') values = results[0].buffers[i];
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
