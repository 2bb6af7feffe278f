/**
 * Reference cross-check (issue "Done means"): a tiny fixed network (weights in tiny-mlp.ts) where the
 * trainers' losses, parameter gradients and first attack step are compared with an independent naive
 * implementation (plain JS arrays, float64, analytic gradients).
 */
import * as tf from '@tensorflow/tfjs';
import { rowStartSeed } from '../../../src/algorithms/attacks/start-point';
import { initBackend } from '../../../src/backend/select';
import { deriveSeed, Rng } from '../../../src/core/rng';
import { martTrainer } from '../../../src/algorithms/trainers/mart';
import { pgdAtTrainer } from '../../../src/algorithms/trainers/pgd-at';
import { standardTrainer } from '../../../src/algorithms/trainers/standard';
import { tradesTrainer } from '../../../src/algorithms/trainers/trades';
import type { TeTensors, Trainer } from '../../../src/algorithms/trainers/types';
import {
  addGrads,
  fixedWeights,
  naiveBackward,
  naiveCe,
  naiveForward,
  naiveKl,
  naiveTe,
  sumLists,
  tinyMlp,
  toRows,
  softmax,
  type Grads,
  type MlpWeights,
  type RecordingModel,
} from './tiny-mlp';

/** MART's loss as the reference mart.py, in float64 JS (constants 1.0001, 1e−12, 1.0000001). */
function naiveMart(w: MlpWeights, x: number[][], xAdv: number[][], y: number[], beta: number): number {
  const nat = naiveForward(w, x).logits;
  const adv = naiveForward(w, xAdv).logits;
  let total = 0;
  nat.forEach((zn, i) => {
    const p = softmax(zn);
    const q = softmax(adv[i]);
    const order = q.map((v, k) => [v, k]).sort((a, b) => b[0] - a[0]);
    const other = order[0][1] === y[i] ? order[1][1] : order[0][1];
    const bce = -Math.log(q[y[i]]) - Math.log(1.0001 - q[other] + 1e-12);
    const kl = p.reduce((s, pk, k) => s + pk * (Math.log(pk) - Math.log(q[k] + 1e-12)), 0);
    total += bce + beta * kl * (1.0000001 - p[y[i]]);
  });
  return total / nat.length;
}

/** Central finite differences of a float64 loss w.r.t. every weight (an independent check of the gradient). */
function finiteDifferences(w: MlpWeights, loss: (w: MlpWeights) => number): number[][] {
  const h = 1e-6;
  return (['w1', 'b1', 'w2', 'b2'] as const).map((key) =>
    w[key].map((_, j) => {
      const shifted = (d: number) => loss({ ...w, [key]: w[key].map((v, k) => (k === j ? v + d : v)) });
      return (shifted(h) - shifted(-h)) / (2 * h);
    }),
  );
}

const SHAPE: [number, number, number] = [2, 2, 1];
const W = fixedWeights(4, 5, 3);
const X = [
  [0.1, 0.9, 0.4, 0.6],
  [0.8, 0.2, 0.5, 0.3],
  [0.35, 0.55, 0.95, 0.05],
];
const XADV = X.map((r, i) => r.map((v, d) => Math.min(1, Math.max(0, v + (((i + d) % 3) - 1) * 0.07))));
const Y = [2, 0, 1];
const TARGET = [
  [0.2, 0.3, 0.5],
  [0.6, 0.3, 0.1],
  [0.1, 0.1, 0.8],
];
const TE_WEIGHT = 2.5;

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 4): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], digits);
}

describe.each(['cpu', 'wasm'] as const)('trainers vs a naive reference on %s', (backend) => {
  let model: RecordingModel;
  let x: tf.Tensor4D;
  let xAdv: tf.Tensor4D;
  let y: tf.Tensor1D;
  let target: tf.Tensor2D;
  beforeAll(async () => {
    await initBackend(backend);
    model = tinyMlp(W, SHAPE);
    x = tf.tensor4d(X.flat(), [3, ...SHAPE]);
    xAdv = tf.tensor4d(XADV.flat(), [3, ...SHAPE]);
    y = tf.tensor1d(Y, 'int32');
    target = tf.tensor2d(TARGET);
  });
  afterAll(() => {
    tf.dispose([x, xAdv, y, target]);
    model.dispose();
  });

  /** The trainer's loss, per-example TE penalty and parameter gradients (train mode). */
  function trainerLoss(trainer: Trainer, te: TeTensors | null) {
    let penalty: number[] | null = null;
    const { value, grads } = tf.variableGrads(
      () => {
        const out = trainer.loss({ model, x, xAdv, y, te });
        penalty = out.tePenalty ? Array.from(out.tePenalty.dataSync()) : null;
        return out.loss;
      },
      model.parameters.map((p) => p.variable),
    );
    const g = model.parameters.map((p) => Array.from(grads[p.variable.name]!.dataSync()));
    const loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads).filter((t): t is tf.Tensor => t != null)]);
    return { loss, grads: g, penalty: penalty as number[] | null };
  }

  function expectGrads(actual: number[][], expected: Grads): void {
    expectClose(actual[0], expected.w1);
    expectClose(actual[1], expected.b1);
    expectClose(actual[2], expected.w2);
    expectClose(actual[3], expected.b2);
  }

  it('PGD-AT: L = CE(f(x′), y), one train-mode forward on x′ only', () => {
    model.calls.length = 0;
    const out = trainerLoss(pgdAtTrainer(), null);
    expect(model.calls).toEqual([{ mode: 'train', batch: 3 }]);
    const f = naiveForward(W, XADV);
    const ce = naiveCe(f.logits, Y);
    expect(out.loss).toBeCloseTo(ce.value, 5);
    expectGrads(out.grads, naiveBackward(W, f, ce.dlogits));
    expect(out.penalty).toBeNull();
  });

  it('PGD-AT + TE: L = CE(f(x′), y) + w·mean_{B×K}(softmax(f(x′)) − p̂)²', () => {
    const out = trainerLoss(pgdAtTrainer({ te: {} }), { weight: TE_WEIGHT, target });
    const f = naiveForward(W, XADV);
    const ce = naiveCe(f.logits, Y);
    const te = naiveTe(f.logits, TARGET, TE_WEIGHT);
    expect(te.value).toBeGreaterThan(0.01); // the penalty is not negligible in this check
    expect(out.loss).toBeCloseTo(ce.value + te.value, 5);
    expectGrads(out.grads, naiveBackward(W, f, sumLists(ce.dlogits, te.dlogits)));
    expectClose(out.penalty!, te.perExample, 5);
  });

  it('TRADES: L = CE(f(x), y) + β·KL_sum(p(x)‖p(x′))/B, two train-mode forwards, target not detached', () => {
    model.calls.length = 0;
    const out = trainerLoss(tradesTrainer({ beta: 6 }), null);
    expect(model.calls).toEqual([
      { mode: 'train', batch: 3 },
      { mode: 'train', batch: 3 },
    ]);
    const fn = naiveForward(W, X);
    const fa = naiveForward(W, XADV);
    const ce = naiveCe(fn.logits, Y);
    const kl = naiveKl(fn.logits, fa.logits, 6 / 3);
    expect(out.loss).toBeCloseTo(ce.value + kl.value, 5);
    const g = addGrads(naiveBackward(W, fn, sumLists(ce.dlogits, kl.dNat)), naiveBackward(W, fa, kl.dAdv));
    expectGrads(out.grads, g);
  });

  it('TRADES + TE: the training penalty is on the natural outputs (authors), or on f(x′) as an option', () => {
    const fn = naiveForward(W, X);
    const fa = naiveForward(W, XADV);
    const ce = naiveCe(fn.logits, Y);
    const kl = naiveKl(fn.logits, fa.logits, 6 / 3);
    for (const on of ['natural', 'adversarial'] as const) {
      const out = trainerLoss(tradesTrainer({ beta: 6, te: { penaltyOn: on } }), { weight: TE_WEIGHT, target });
      const te = naiveTe(on === 'natural' ? fn.logits : fa.logits, TARGET, TE_WEIGHT);
      expect(out.loss).toBeCloseTo(ce.value + kl.value + te.value, 5);
      const dNat = on === 'natural' ? sumLists(sumLists(ce.dlogits, kl.dNat), te.dlogits) : sumLists(ce.dlogits, kl.dNat);
      const dAdv = on === 'adversarial' ? sumLists(kl.dAdv, te.dlogits) : kl.dAdv;
      expectGrads(out.grads, addGrads(naiveBackward(W, fn, dNat), naiveBackward(W, fa, dAdv)));
      expectClose(out.penalty!, te.perExample, 5);
    }
  });

  it('MART: mean_i [BCE_i + β·KL_i·(1 − p_y(x_i))], natural then adversarial train-mode forwards (finite differences)', () => {
    model.calls.length = 0;
    const out = trainerLoss(martTrainer({ beta: 6 }), null);
    expect(model.calls.map((c) => c.mode)).toEqual(['train', 'train']);
    expect(out.loss).toBeCloseTo(naiveMart(W, X, XADV, Y, 6), 5);
    const fd = finiteDifferences(W, (w) => naiveMart(w, X, XADV, Y, 6));
    out.grads.forEach((g, i) => expectClose(g, fd[i], 4));
    const withTe = trainerLoss(martTrainer({ beta: 6, te: {} }), { weight: TE_WEIGHT, target });
    expect(withTe.loss).toBeCloseTo(naiveMart(W, X, XADV, Y, 6) + naiveTe(naiveForward(W, XADV).logits, TARGET, TE_WEIGHT).value, 5);
  });

  it("TRADES with β = 0 has the clean trainer's loss and gradients", () => {
    const trades = trainerLoss(tradesTrainer({ beta: 0 }), null);
    const clean = trainerLoss(standardTrainer(), null);
    expect(trades.loss).toBeCloseTo(clean.loss, 6);
    trades.grads.forEach((g, i) => expectClose(g, clean.grads[i], 6));
  });

  /** The trainer's attack with one step; the start is reproduced from the documented seed of pgdLinf. */
  function firstStep(trainer: Trainer, te: TeTensors | null): number[][] {
    const logitsNatEval = model.apply(x, 'eval');
    model.calls.length = 0;
    const out = trainer.attack({ model, x, y, seed: 77, logitsNatEval, te });
    expect(model.calls.every((c) => c.mode === 'eval')).toBe(true);
    const rows = toRows(out);
    tf.dispose([out, logitsNatEval]);
    return rows;
  }

  function naiveStep(start: number[][], grad: number[][], eps: number, alpha: number): number[][] {
    return start.map((r, i) =>
      r.map((v, d) => {
        const g = grad[i][d];
        const moved = v + alpha * Math.sign(g);
        return Math.min(1, Math.max(0, Math.min(X[i][d] + eps, Math.max(X[i][d] - eps, moved))));
      }),
    );
  }

  it('PGD-AT (+TE) first attack step from x: x + α·sign(∇ CE [+ TE]), projected', () => {
    const attack = { steps: 1, eps: 0.1, alpha: 0.04, randomStart: 'none' as const };
    const f = naiveForward(W, X);
    const ce = naiveCe(f.logits, Y);
    expectClose(firstStep(pgdAtTrainer({ attack }), null).flat(), naiveStep(X, naiveBackward(W, f, ce.dlogits).x, 0.1, 0.04).flat(), 5);
    // with a large TE weight the penalty dominates some coordinates' signs
    const te = naiveTe(f.logits, TARGET, 50);
    const gTe = naiveBackward(W, f, sumLists(ce.dlogits, te.dlogits)).x;
    const gCe = naiveBackward(W, f, ce.dlogits).x;
    expect(gTe.flat().some((g, i) => Math.sign(g) !== Math.sign(gCe.flat()[i]))).toBe(true);
    expectClose(firstStep(pgdAtTrainer({ attack, te: {} }), { weight: 50, target }).flat(), naiveStep(X, gTe, 0.1, 0.04).flat(), 5);
  });

  it('TRADES (+TE) first attack step from x + 0.001·N(0, I): sign of ∇ KL_sum [(β/B)·KL_sum + TE]', () => {
    const attack = { steps: 1, eps: 0.1, alpha: 0.04 };
    // row i's start: x_i + 0.001·N(0, I) from Rng(rowStartSeed(attack-start seed, i)) (rows keyed by position)
    const noise = X.map((_, i) => new Rng(rowStartSeed(deriveSeed(77, 'attack-start', 0), i)).fillNormal(new Float32Array(4), 0, 0.001));
    const start = X.map((r, i) => r.map((v, d) => Math.fround(v + noise[i][d])));
    const fn = naiveForward(W, X);
    const fs = naiveForward(W, start);
    const kl = naiveKl(fn.logits, fs.logits, 1);
    const gKl = naiveBackward(W, fs, kl.dAdv).x.flat();
    // Near the start KL's gradient is a difference of nearly equal float32 softmaxes (error ~1e-8): the
    // sign of a component below 1e-6 is not determined in float32, so those components are not compared.
    const decided = gKl.map((g) => Math.abs(g) >= 1e-6);
    expect(decided.filter(Boolean).length).toBeGreaterThanOrEqual(10);
    const got = firstStep(tradesTrainer({ beta: 6, attack }), null).flat();
    const want = naiveStep(start, naiveBackward(W, fs, kl.dAdv).x, 0.1, 0.04).flat();
    expectClose(
      got.filter((_, i) => decided[i]),
      want.filter((_, i) => decided[i]),
      5,
    );
    // w small enough that both terms decide signs near the start (KL's gradient is O(0.001) there)
    const w = 0.01;
    const te = naiveTe(fs.logits, TARGET, w);
    const signs = (scale: number) =>
      naiveBackward(W, fs, sumLists(naiveKl(fn.logits, fs.logits, scale).dAdv, te.dlogits))
        .x.flat()
        .map(Math.sign);
    // sensitivity guard: the (β/B) scaling and the TE term both change the step here
    expect(signs(6 / 3)).not.toEqual(signs(6));
    expect(signs(6 / 3)).not.toEqual(signs(0));
    const g = naiveBackward(W, fs, sumLists(naiveKl(fn.logits, fs.logits, 6 / 3).dAdv, te.dlogits)).x;
    expectClose(
      firstStep(tradesTrainer({ beta: 6, attack, te: {} }), { weight: w, target }).flat(),
      naiveStep(start, g, 0.1, 0.04).flat(),
      5,
    );
  });

  it("default attack settings are the authors' per trainer", () => {
    expect(pgdAtTrainer().attackSettings).toEqual({
      eps: 8 / 255,
      alpha: 2 / 255,
      steps: 10,
      norm: 'linf',
      restarts: 1,
      randomStart: 'uniform-clamped',
    });
    expect(pgdAtTrainer({ te: {} }).attackSettings!.randomStart).toBe('uniform');
    expect(tradesTrainer().attackSettings!.randomStart).toBe('normal');
    expect(martTrainer().attackSettings!.randomStart).toBe('normal');
    expect(pgdAtTrainer({ attack: { norm: 'l2', eps: 0.5 } }).attackSettings!.randomStart).toBe('normal');
    expect(standardTrainer().attackSettings).toBeNull();
  });
});
