import * as tf from '@tensorflow/tfjs';
import { DataParallelPool, trainStepParallel } from '../../../src/run/data-parallel';
import { initBackend } from '../../../src/backend/select';
import type { Model } from '../../../src/core/model';
import { Rng } from '../../../src/core/rng';
import { recordBatchStats, type BatchStats } from '../../../src/core/batch-stats';
import { createModel } from '../../../src/models';
import { Sgd } from '../../../src/algorithms/optim/sgd';
import { createTrainer } from '../../../src/config/builtins';

/**
 * BatchNorm under data parallelism (PyTorch DDP without SyncBatchNorm): each share normalises with its
 * own batch statistics and the update uses the share-size-weighted mean of the share gradients.
 * Reference: the same model on the main thread, one train-mode step per share from the same starting
 * weights. The running statistics are the full batch's: for the first BatchNorm (whose input, conv1(x),
 * does not depend on the shares) exactly the single-thread step's, within- and between-share variance
 * included; for every layer the pooled mean and unbiased variance of the share statistics.
 */
const SHAPE: [number, number, number] = [25, 25, 1]; // the smallest input preact-resnet18 accepts
const B = 3; // shares of 2 and 1 rows: unequal weights
const SEED = 4;

function newModel(): Model {
  return createModel('preact-resnet18', { numClasses: 10, inputShape: SHAPE, seed: SEED });
}

it("preact-resnet18, 2 workers: weighted mean of per-share gradients; the full batch's running statistics", async () => {
  await initBackend('wasm');
  const rng = new Rng(9);
  const D = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const x = rng.fillUniform(new Float32Array(B * D), 0, 1);
  const labels = Int32Array.from({ length: B }, () => rng.int(10));
  const trainer = createTrainer('standard', {});
  const shares = [
    { start: 0, end: 2 },
    { start: 2, end: 3 },
  ];

  // reference: θ − lr·Σ_s (n_s/B)·∇L_s and Σ_s (n_s/B)·running_s, each share from the initial model
  const expectedParams = new Map<string, Float32Array>();
  const expectedBuffers = new Map<string, Float32Array | Int32Array>();
  const shareStats: BatchStats[][] = [];
  for (const s of shares) {
    const w = (s.end - s.start) / B;
    const ref = newModel();
    const { grads } = tf.tidy(() => {
      const xs = tf.tensor4d(x.slice(s.start * D, s.end * D), [s.end - s.start, ...SHAPE]);
      const ys = tf.tensor1d(labels.slice(s.start, s.end), 'int32');
      const stats: BatchStats[] = [];
      shareStats.push(stats);
      return recordBatchStats(
        (st) => stats.push(st),
        () =>
          tf.variableGrads(
            () => trainer.loss({ model: ref, x: xs, xAdv: xs, y: ys, te: null }).loss,
            ref.parameters.map((p) => p.variable),
          ),
      );
    });
    for (const p of ref.parameters) {
      const acc = expectedParams.get(p.name) ?? (p.variable.dataSync().slice() as Float32Array);
      const g = grads[p.variable.name].dataSync();
      for (let j = 0; j < acc.length; j++) acc[j] -= w * g[j];
      expectedParams.set(p.name, acc);
    }
    for (const b of ref.buffers) {
      const v = b.variable.dataSync();
      if (b.variable.dtype === 'int32') expectedBuffers.set(b.name, Int32Array.from(v));
      else {
        const acc = (expectedBuffers.get(b.name) as Float32Array | undefined) ?? new Float32Array(v.length);
        for (let j = 0; j < acc.length; j++) acc[j] += w * v[j];
        expectedBuffers.set(b.name, acc);
      }
    }
    tf.dispose(grads);
    ref.dispose();
  }
  // running statistics of the pooled batch: mean Σ c μ / C, unbiased variance (Σ c (σ² + (μ − μ̄)²)) / (C − 1), from 0 and 1
  shareStats[0].forEach((first, f) => {
    const C = shareStats.reduce((n, st) => n + st[f].count, 0);
    const mean = new Float32Array(first.mean.length);
    const variance = new Float32Array(first.mean.length);
    for (let c = 0; c < mean.length; c++) {
      const mu = shareStats.reduce((a, st) => a + st[f].count * st[f].mean[c], 0) / C;
      const v = shareStats.reduce((a, st) => a + st[f].count * (st[f].biasedVariance[c] + (st[f].mean[c] - mu) ** 2), 0) / (C - 1);
      mean[c] = 0.1 * mu;
      variance[c] = 0.9 + 0.1 * v;
    }
    expectedBuffers.set(`${first.layer}.running_mean`, mean);
    expectedBuffers.set(`${first.layer}.running_var`, variance);
  });
  // the single-thread step on the whole batch: the first BatchNorm's running statistics
  const whole = newModel();
  tf.tidy(() => {
    whole.apply(tf.tensor4d(x, [B, ...SHAPE]), 'train');
  });
  const firstBn = whole.buffers.filter((b) => /running_(mean|var)$/.test(b.name)).slice(0, 2);
  const singleThread = new Map(firstBn.map((b) => [b.name, b.variable.dataSync().slice()]));
  whole.dispose();

  const model = newModel();
  const optimizer = new Sgd(model.parameters, { momentum: 0, weightDecay: 0 });
  const pool = await DataParallelPool.create({ workers: 2, model, trainer: 'standard', backend: 'wasm' });
  try {
    await trainStepParallel(pool, model, optimizer, 1, { x, shape: [B, ...SHAPE], labels, seed: 1, te: null });
  } finally {
    expect(await pool.close()).toEqual([0, 0]);
  }
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let m = 0;
    for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j] - b[j]));
    return m;
  };
  for (const p of model.parameters) {
    const d = maxDiff(p.variable.dataSync(), expectedParams.get(p.name)!);
    if (d > 1e-5) throw new Error(`${p.name}: max |Δ| ${d}`);
  }
  expect(model.buffers.some((b) => b.name.endsWith('running_mean'))).toBe(true);
  expect(singleThread.size).toBe(2);
  for (const [name, v] of singleThread) {
    const d = maxDiff(model.buffers.find((b) => b.name === name)!.variable.dataSync(), v);
    if (d > 1e-5) throw new Error(`${name} vs the single-thread step: max |Δ| ${d}`);
  }
  for (const b of model.buffers) {
    const d = maxDiff(b.variable.dataSync(), expectedBuffers.get(b.name)!);
    if (d > 1e-6) throw new Error(`${b.name}: max |Δ| ${d}`);
    if (b.name.endsWith('num_batches_tracked')) expect(Array.from(b.variable.dataSync())).toEqual([1]);
  }
  optimizer.dispose();
  model.dispose();
});
