import type { RunEvent } from '../../src/core/run-event';
import type { ExampleColumns, EpochRecord, Phase } from '../../src/core/records';
import { Rng, deriveSeed } from '../../src/core/rng';
import { EventDetector } from '../../src/operators/detect-events';

/**
 * A realistic, seeded RunEvent stream (what the pipeline emits): N examples, some with noisy labels,
 * `epochs` epochs, train-phase rows in shuffled batches and eval-phase rows in order, events from
 * the real detector, complexity measures, steps and epoch records. Values drift with the epoch so
 * that examples get learned and forgotten.
 */
export interface SyntheticRunOptions {
  readonly runDir: string;
  readonly runId?: string;
  readonly n?: number;
  readonly epochs?: number;
  readonly batch?: number;
  readonly seed?: number;
  readonly teStart?: number;
  readonly numClasses?: number;
  readonly phases?: readonly Phase[];
  readonly trainer?: string;
  /** Also log eval-phase rows of a test split of this many examples (indices overlap the training set's). */
  readonly testSplit?: number;
  /** Test robust accuracy of each epoch (default: up by 10 points for 3 epochs, then down by 5 per epoch). */
  readonly testRobust?: (epoch: number) => number;
  /** From this epoch on, every example's correctness is settled (clean labels right, noisy wrong), as in a converged run: no events after it. */
  readonly settleFrom?: number;
}

export function syntheticRun(o: SyntheticRunOptions): RunEvent[] {
  const n = o.n ?? 300;
  const epochs = o.epochs ?? 4;
  const batch = o.batch ?? 64;
  const seed = o.seed ?? 7;
  const K = o.numClasses ?? 10;
  const teStart = o.teStart ?? 3;
  const runId = o.runId ?? 'synthetic';
  const phases = o.phases ?? ['train', 'eval'];
  const out: RunEvent[] = [];
  out.push({
    type: 'run-start',
    runId,
    runDir: o.runDir,
    spec: {
      meta: {
        trainer: o.trainer ?? 'pgd-at',
        label_noise: { kind: 'sym', rate: 0.2 },
        attack: { norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 10 },
      },
      seed,
    },
    seed,
    backend: { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', tfjsVersion: '4.22.0', tensorflowVersion: null, threads: 1 },
    startedAt: '2024-05-06T07:08:09.000Z',
    epochs,
    numClasses: K,
    trainSize: n,
    firstEpoch: 1,
    priorEpochs: [],
  });
  const lr = new Rng(deriveSeed(seed, 'labels'));
  const example = Int32Array.from({ length: n }, (_, i) => i);
  const labelTrue = Int32Array.from({ length: n }, () => lr.int(K));
  const labelUsed = labelTrue.map((y) => (lr.uniform() < 0.2 ? (y + 1 + lr.int(K - 1)) % K : y));
  let noisyCount = 0;
  for (let i = 0; i < n; i++) if (labelTrue[i] !== labelUsed[i]) noisyCount++;
  out.push({ type: 'labels', example, label_true: labelTrue, label_used: labelUsed, noiseRate: noisyCount / n });
  const detectors = { train: new EventDetector({ phase: 'train' }), eval: new EventDetector({ phase: 'eval' }) };
  let best = { epoch: 0, acc: -1 };
  for (let e = 1; e <= epochs; e++) {
    const steps = Math.ceil(n / batch);
    out.push({ type: 'epoch-start', epoch: e, lr: 0.1 / e, teWeight: e >= teStart ? (30 * (e - teStart + 1)) / epochs : 0, steps });
    for (const phase of phases) {
      const rng = new Rng(deriveSeed(seed, 'values', e, phase === 'train' ? 0 : 1));
      const order = phase === 'train' ? new Rng(deriveSeed(seed, 'shuffle', e)).permutation(n) : example.slice();
      for (let s = 0; s < n; s += batch) {
        const idx = order.slice(s, Math.min(n, s + batch));
        const cols = makeColumns(
          e,
          phase,
          idx,
          labelTrue,
          labelUsed,
          rng,
          K,
          e >= teStart,
          epochs,
          o.settleFrom !== undefined && e >= o.settleFrom,
        );
        out.push({ type: 'examples', columns: cols });
        if (phase === 'train') {
          out.push({
            type: 'step',
            record: {
              epoch: e,
              step: s / batch,
              loss: 2.3 / e + rng.uniform() * 0.1,
              grad_norm_sq: 10 * rng.uniform(),
              lr: 0.1 / e,
              ms: 5 + rng.uniform(),
              batch_size: idx.length,
            },
          });
        }
        const ev = detectors[phase].observe(cols);
        if (ev.example.length > 0) out.push({ type: 'events', columns: ev });
      }
    }
    if (o.testSplit) {
      const rng = new Rng(deriveSeed(seed, 'values', e, 2));
      const idx = Int32Array.from({ length: o.testSplit }, (_, i) => i);
      const testLabels = Int32Array.from(idx, (i) => (i * 7) % K);
      out.push({
        type: 'examples',
        columns: { ...makeColumns(e, 'eval', idx, testLabels, testLabels, rng, K, false, epochs), split: 'test' },
      });
    }
    out.push({
      type: 'complexity',
      epoch: e,
      measures: { frobenius_sum: 10 + e, frobenius_prod: 2 ** e, spectral_prod: 1.5 * e, path_norm: 100 / e },
    });
    // accuracies stay in [0, 1] on long runs (the drifts below leave the first 5 epochs as they were)
    const acc = (v: number) => Math.min(1, Math.max(0, v));
    const testRobust = acc(o.testRobust ? o.testRobust(e) : 0.3 + 0.1 * Math.min(e, 3) - 0.05 * Math.max(0, e - 3));
    if (testRobust > best.acc) best = { epoch: e, acc: testRobust };
    const rec: EpochRecord = {
      epoch: e,
      lr: 0.1 / e,
      te_weight: e >= teStart ? 1 : 0,
      train_loss: 2 / e,
      train_clean_acc: acc(0.5 + 0.1 * e),
      train_clean_loss: 1 / e,
      train_robust_acc: acc(0.3 + 0.12 * e),
      train_robust_loss: 1.5 / e,
      test_clean_acc: acc(0.5 + 0.05 * e),
      test_clean_loss: 1.2 / e,
      test_robust_acc: testRobust,
      test_robust_loss: 1.7 / e,
      grad_norm_sq_mean: 5 / e,
      wall_ms: 1000 + e,
      eval_ms: 400 + e,
      best_epoch: best.epoch,
      best_rule: 'test_robust_acc',
    };
    out.push({ type: 'epoch-end', record: rec });
  }
  out.push({ type: 'run-end', status: 'completed', wallMs: 4321 });
  return out;
}

function makeColumns(
  epoch: number,
  phase: Phase,
  idx: Int32Array,
  labelTrue: Int32Array,
  labelUsed: Int32Array,
  rng: Rng,
  K: number,
  te: boolean,
  epochs: number,
  settled = false,
): ExampleColumns {
  const m = idx.length;
  const f = () => new Float32Array(m);
  const c = {
    epoch,
    phase,
    example: Int32Array.from(idx),
    label_true: Int32Array.from(idx, (i) => labelTrue[i]),
    label_used: Int32Array.from(idx, (i) => labelUsed[i]),
    is_noisy: Uint8Array.from(idx, (i) => (labelTrue[i] !== labelUsed[i] ? 1 : 0)),
    loss_clean: f(),
    pred_clean: new Int32Array(m),
    correct_clean: new Uint8Array(m),
    p_label_clean: f(),
    margin_clean: f(),
    loss_adv: f(),
    pred_adv: new Int32Array(m),
    correct_adv: new Uint8Array(m),
    p_label_adv: f(),
    margin_adv: f(),
    te_target_entropy: f(),
    te_penalty: f(),
  };
  for (let j = 0; j < m; j++) {
    const noisy = c.is_noisy[j] === 1;
    const skill = (epoch / epochs) * (noisy ? 0.6 : 1.0);
    const pc = Math.min(0.999, Math.max(0.001, 0.15 + 0.7 * skill + 0.3 * (rng.uniform() - 0.5)));
    const pa = Math.min(0.999, Math.max(0.001, pc * (0.5 + 0.4 * rng.uniform())));
    c.p_label_clean[j] = pc;
    c.p_label_adv[j] = pa;
    c.loss_clean[j] = -Math.log(pc);
    c.loss_adv[j] = -Math.log(pa);
    c.margin_clean[j] = 4 * (pc - 0.5) + 0.1 * rng.normal();
    c.margin_adv[j] = 4 * (pa - 0.5) + 0.1 * rng.normal();
    c.correct_clean[j] = (settled ? !noisy : c.margin_clean[j] > 0) ? 1 : 0;
    c.correct_adv[j] = (settled ? !noisy : c.margin_adv[j] > 0) ? 1 : 0;
    c.pred_clean[j] = c.correct_clean[j] ? c.label_used[j] : (c.label_used[j] + 1) % K;
    c.pred_adv[j] = c.correct_adv[j] ? c.label_used[j] : (c.label_used[j] + 2) % K;
    c.te_target_entropy[j] = te ? 0.5 + rng.uniform() : NaN;
    c.te_penalty[j] = te ? 0.01 * rng.uniform() : NaN;
  }
  return c;
}
