import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, lastValueFrom, of, range, concatMap, toArray, type Observable } from 'rxjs';
import { initBackend } from '../../src/backend/select';
import type { AttackedBatch, AugmentedBatch, LabeledBatch, LoadedBatch, TrainedBatch } from '../../src/core/batch';
import { createModel } from '../../src/models';
import { attack } from '../../src/operators/attack';
import { augment } from '../../src/operators/augment';
import { evaluate, summarizeEvaluation } from '../../src/evaluation/evaluate';
import { threatModel } from '../../src/evaluation/threat-model';
import { loadBatches } from '../../src/operators/load-batches';
import { Sgd } from '../../src/algorithms/optim/sgd';
import { randomizeLabels } from '../../src/operators/randomize-labels';
import { makeLrSchedule } from '../../src/algorithms/schedules/lr-schedule';
import { train } from '../../src/operators/train';
import { createTrainer } from '../../src/config/builtins';
import { pgdAtTrainer } from '../../src/algorithms/trainers/pgd-at';
import { TemporalEnsemble } from '../../src/algorithms/trainers/te';
import { BatchPlanner } from '../../src/data/batch-plans';
import { assignLabels } from '../../src/data/label-noise';
import { createSyntheticSource } from '../../src/data/synthetic';
import { fixedWeights, naiveBackward, naiveCe, naiveForward, tinyMlp } from '../algorithms/trainers/tiny-mlp';

const SHAPE: [number, number, number] = [2, 2, 1];
const W = fixedWeights(4, 5, 3, 3);
const X = [
  [0.1, 0.9, 0.4, 0.6],
  [0.8, 0.2, 0.5, 0.3],
];
const XADV = [
  [0.15, 0.85, 0.45, 0.55],
  [0.75, 0.25, 0.45, 0.35],
];

function attacked(): AttackedBatch {
  return {
    stage: 'attacked',
    split: 'train',
    epoch: 3,
    step: 7,
    indices: new Int32Array([4, 0]),
    x: tf.tensor4d(X.flat(), [2, ...SHAPE]),
    xAdv: tf.tensor4d(XADV.flat(), [2, ...SHAPE]),
    labelsTrue: new Int32Array([1, 2]),
    labelsUsed: new Int32Array([1, 0]),
    numClasses: 3,
    logitsNatEval: Float32Array.from(naiveForward(W, X).logits.flat()),
    te: null,
    attackMs: 5,
  };
}

describe.each(['cpu', 'wasm'] as const)('train operator on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('one PGD-AT step: loss, Σ‖∇W‖²_F before weight decay, torch SGD update, records; disposes x and x′', async () => {
    const model = tinyMlp(W, SHAPE);
    const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 0.01 });
    const lr = makeLrSchedule({ type: 'multistep', lr: 0.2, milestones: [2] });
    const input = attacked();
    const out = await firstValueFrom(of(input).pipe(train({ model, trainer: pgdAtTrainer(), optimizer, lr })));
    expect(input.x.isDisposed && input.xAdv.isDisposed).toBe(true);

    const f = naiveForward(W, XADV);
    const ce = naiveCe(f.logits, [1, 0]);
    const g = naiveBackward(W, f, ce.dlogits);
    const normSq = [...g.w1, ...g.b1, ...g.w2, ...g.b2].reduce((s, v) => s + v * v, 0);
    expect(out.record.loss).toBeCloseTo(ce.value, 5);
    expect(out.record.grad_norm_sq).toBeCloseTo(normSq, 4);
    expect(out.record.lr).toBeCloseTo(0.02, 12); // epoch 3 is after milestone 2
    expect(out.record).toMatchObject({ epoch: 3, step: 7, batch_size: 2 });
    expect(out.record.ms).toBeGreaterThanOrEqual(5);
    // first SGD step: θ ← θ − lr·(g + wd·θ)
    const w1 = Array.from(model.parameters[0].variable.dataSync());
    w1.forEach((v, i) => expect(v).toBeCloseTo(W.w1[i] - 0.02 * (g.w1[i] + 0.01 * W.w1[i]), 5));

    const c = out.columns;
    expect(c.phase).toBe('train');
    expect(Array.from(c.example)).toEqual([4, 0]);
    expect(Array.from(c.is_noisy)).toEqual([0, 1]);
    // adversarial columns from the train-mode f(x′) (before the update), clean ones from the eval-mode f(x)
    const zAdv = f.logits;
    const zNat = naiveForward(W, X).logits;
    const lossOf = (z: number[], y: number) => Math.log(z.reduce((s, v) => s + Math.exp(v), 0)) - z[y];
    expect(c.loss_adv[1]).toBeCloseTo(lossOf(zAdv[1], 0), 5);
    expect(c.loss_clean[0]).toBeCloseTo(lossOf(zNat[0], 1), 5);
    expect(c.margin_adv[0]).toBeCloseTo(zAdv[0][1] - Math.max(zAdv[0][0], zAdv[0][2]), 5);
    expect(c.pred_clean[1]).toBe(zNat[1].indexOf(Math.max(...zNat[1])));
    expect(c.p_label_clean[0]).toBeCloseTo(Math.exp(-lossOf(zNat[0], 1)), 5);
    expect(Number.isNaN(c.te_penalty[0]) && Number.isNaN(c.te_target_entropy[1])).toBe(true);
    optimizer.dispose();
    model.dispose();
  });

  it('records TE columns (entropy of p̂, per-example penalty) when the batch carries TE', async () => {
    const model = tinyMlp(W, SHAPE);
    const optimizer = new Sgd(model.parameters);
    const input: AttackedBatch = { ...attacked(), te: { weight: 3, target: new Float32Array([0.5, 0.5, 0, 0.2, 0.3, 0.5]) } };
    const out = await firstValueFrom(of(input).pipe(train({ model, trainer: pgdAtTrainer({ te: {} }), optimizer, lr: () => 0.1 })));
    expect(out.columns.te_target_entropy[0]).toBeCloseTo(Math.log(2), 5);
    const s = naiveForward(W, XADV).logits.map((z) => {
      const e = z.map(Math.exp);
      const t = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / t);
    });
    const pen = (3 / 3) * s[1].reduce((acc, v, k) => acc + (v - [0.2, 0.3, 0.5][k]) ** 2, 0);
    expect(out.columns.te_penalty[1]).toBeCloseTo(pen, 5);
    optimizer.dispose();
    model.dispose();
  });

  it('raises NON_FINITE and still frees the batch when the loss is not finite', async () => {
    const model = tinyMlp(W, SHAPE);
    const optimizer = new Sgd(model.parameters);
    const base = tf.memory().numTensors;
    const input = attacked();
    const nanX = tf.tensor4d([NaN, 0, 0, 0, 0, 0, 0, 0], [2, ...SHAPE]);
    input.xAdv.dispose();
    const bad: AttackedBatch = { ...input, xAdv: nanX };
    await expect(firstValueFrom(of(bad).pipe(train({ model, trainer: pgdAtTrainer(), optimizer, lr: () => 0.1 })))).rejects.toThrow(
      /NaN|non-finite|loss/,
    );
    expect(tf.memory().numTensors).toBe(base); // x and the NaN x′ were freed by train
    optimizer.dispose();
    model.dispose();
  });

  it('a few epochs of load → randomizeLabels → augment → attack → train (+ evaluate) leave no tensors behind', async () => {
    const source = createSyntheticSource({ numClasses: 3, imageShape: [6, 6, 1], trainSize: 24, testSize: 12, seed: 2 });
    const planner = new BatchPlanner(source.info.sizes, { batchSize: 8, seed: 4 });
    const labels = assignLabels('symmetric', 0.5, 4, source.split('train').labels, 3);
    const model = createModel('mlp', { numClasses: 3, inputShape: [6, 6, 1], seed: 1 });
    const baseline = tf.memory().numTensors;
    for (const name of ['pgd-at', 'trades', 'mart'] as const) {
      const te = new TemporalEnsemble(24, 3, { start: 2, end: 3, weight: 5 });
      const trainer = createTrainer(name, { attack: { eps: 0.1, alpha: 0.05, steps: 2 }, te: {} });
      const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
      const lr = makeLrSchedule({ type: 'cosine', lr: 0.05, tMax: 3 });
      const steps = await lastValueFrom(
        range(1, 3).pipe(
          concatMap((epoch) =>
            planner
              .plans$('train', epoch)
              .pipe(
                loadBatches(source),
                randomizeLabels(labels),
                augment({ crop: 1, flip: true, seed: 4 }),
                attack({ model, trainer, te, seed: 4 }),
                train({ model, trainer, optimizer, lr }),
              ),
          ),
          toArray(),
        ),
      );
      expect(steps.length).toBe(9);
      expect(steps.every((s) => Number.isFinite(s.record.loss))).toBe(true);
      expect(steps.filter((s) => s.epoch >= 2).every((s) => Number.isFinite(s.columns.te_penalty[0]))).toBe(true);
      const summary = await lastValueFrom(
        planner
          .plans$('test', 3)
          .pipe(
            loadBatches(source),
            evaluate({ model, seed: 4, attack: threatModel({ eps: 0.1, alpha: 0.05, steps: 2 }) }),
            summarizeEvaluation(),
          ),
      );
      expect(summary.n).toBe(12);
      optimizer.dispose();
      expect(tf.memory().numTensors).toBe(baseline);
    }
    model.dispose();
  });
});

/** Compile-time checks (npm test runs tsc): the stages only fit together in the pipeline order. */
export function stageOrderTypeChecks(
  loaded: Observable<LoadedBatch>,
  labeled: Observable<LabeledBatch>,
  augmented: Observable<AugmentedBatch>,
  ops: { attack: ReturnType<typeof attack>; train: ReturnType<typeof train> },
): Observable<TrainedBatch>[] {
  const ok1: Observable<TrainedBatch> = augmented.pipe(ops.attack, ops.train);
  const ok2: Observable<TrainedBatch> = labeled.pipe(ops.attack, ops.train);
  // @ts-expect-error train needs an attacked batch
  const bad1 = augmented.pipe(ops.train);
  // @ts-expect-error labels must be assigned (randomizeLabels) before the attack
  const bad2 = loaded.pipe(ops.attack);
  // @ts-expect-error attack cannot run twice (an AttackedBatch is not a LabeledBatch/AugmentedBatch)
  const bad3 = augmented.pipe(ops.attack, ops.attack);
  // @ts-expect-error augment comes before attack, not after
  const bad4 = labeled.pipe(ops.attack, augment({ crop: 0, flip: false, seed: 0 }));
  return [ok1, ok2, bad1, bad2, bad3, bad4] as Observable<TrainedBatch>[];
}

// one backend is enough here: the roll-back is backend-independent and preact-resnet18 is slow on cpu
describe('train operator on wasm, with BatchNorm', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('a rejected non-finite step leaves the BatchNorm running statistics as they were', async () => {
    const shape: [number, number, number] = [25, 25, 1]; // the smallest input preact-resnet18 accepts
    const model = createModel('preact-resnet18', { numClasses: 3, inputShape: shape, seed: 2 });
    const optimizer = new Sgd(model.parameters);
    const before = model.buffers.map((b) => Array.from(b.variable.dataSync()));
    const D = 25 * 25;
    const xAdv = new Float32Array(2 * D).fill(0.5);
    xAdv[3] = NaN;
    const bad: AttackedBatch = {
      ...attacked(),
      x: tf.zeros([2, ...shape]),
      xAdv: tf.tensor4d(xAdv, [2, ...shape]),
      logitsNatEval: new Float32Array(6),
    };
    await expect(firstValueFrom(of(bad).pipe(train({ model, trainer: pgdAtTrainer(), optimizer, lr: () => 0.1 })))).rejects.toThrow(
      /NON_FINITE|not applied/,
    );
    expect(model.buffers.some((b) => b.name.endsWith('running_mean'))).toBe(true);
    model.buffers.forEach((b, i) => expect([b.name, Array.from(b.variable.dataSync())]).toEqual([b.name, before[i]]));
    optimizer.dispose();
    model.dispose();
  });
});
