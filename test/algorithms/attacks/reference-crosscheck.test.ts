import * as tf from '@tensorflow/tfjs';
import { rowStartSeed } from '../../../src/algorithms/attacks/start-point';
import { initBackend } from '../../../src/backend/select';
import { deriveSeed, Rng } from '../../../src/core/rng';
import { apgdCe, pgdL2Steps, pgdLinf, pgdLinfSteps, tradesKlAttack } from '../../../src/algorithms/attacks';
import {
  ceObjective,
  crossEntropy,
  cwMargin,
  dlrLoss,
  martLoss,
  tePenalty,
  tradesKlObjective,
  tradesKlSum,
  tradesLoss,
  withTePenalty,
} from '../../../src/algorithms/objectives';
import * as naive from './naive-reference';
import { denseModel } from './tiny-model';

/**
 * Reference cross-check: a dense 4→3 network on 2×2×1 images with weights written here, and the first
 * attack steps, objective values and input gradients compared with the naive float64 implementation in
 * naive-reference.ts (analytic gradients, plain arrays, no tfjs).
 */
const W = [
  [0.8, -0.5, 0.3],
  [-0.4, 0.9, -0.2],
  [0.6, 0.1, -0.7],
  [-0.3, -0.6, 0.5],
];
const b = [0.1, -0.2, 0.05];
// pixels near 0 and 1 so that the [0, 1] clamp is exercised
const X = [
  [0.2, 0.9, 0.5, 0.05],
  [0.7, 0.3, 0.97, 0.4],
  [0.5, 0.5, 0.1, 0.8],
];
const Y = [0, 1, 2];
// a fixed start point (stands in for the random start)
const D0 = [
  [0.01, -0.02, 0.015, -0.005],
  [-0.01, 0.02, 0.02, 0.0],
  [0.005, -0.015, -0.01, 0.02],
];
const X0 = X.map((r, i) => r.map((v, d) => v + D0[i][d]));
const TARGETS = [
  [0.6, 0.3, 0.1],
  [0.2, 0.7, 0.1],
  [0.3, 0.3, 0.4],
];
const EPS = 0.1;
const ALPHA = 0.06;

const flat = (m: naive.Mat) => m.flat();
const t4 = (m: naive.Mat) => tf.tensor4d(flat(m), [m.length, 2, 2, 1]);
function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect({ what, ok: worst <= tol, worst }).toEqual({ what, ok: true, worst });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`reference cross-check on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    const setup = () => {
      const model = denseModel(W, b, [2, 2, 1]);
      return { model, x: t4(X), x0: t4(X0), y: tf.tensor1d(Y, 'int32') };
    };

    it('the gradients the first steps use are not near 0 (so the signs are well defined)', () => {
      const g = naive.backToInput(naive.ce(naive.forward(X, W, b), Y).dZ, W);
      expect(Math.min(...flat(g).map(Math.abs))).toBeGreaterThan(1e-3);
    });

    it('PGD-ℓ∞ first two steps (no random start) equal the naive sign-step/projection/clamp', () => {
      const { model, x, y, x0 } = setup();
      let Xa = X;
      const expected: naive.Mat[] = [];
      for (let s = 0; s < 2; s++) {
        const g = naive.backToInput(naive.ce(naive.forward(Xa, W, b), Y).dZ, W);
        Xa = naive.linfStep(X, Xa, g, EPS, ALPHA);
        expected.push(Xa);
      }
      for (let steps = 1; steps <= 2; steps++) {
        const xa = pgdLinf(model, x, y, 0, { eps: EPS, alpha: ALPHA, steps, randomStart: 'none' });
        close(xa.dataSync(), flat(expected[steps - 1]), 1e-6, `pgd step ${steps}`);
        xa.dispose();
      }
      // the projection and the clamp were both active somewhere
      expect(flat(expected[1]).some((v, i) => Math.abs(Math.abs(v - flat(X)[i]) - EPS) < 1e-9)).toBe(true);
      expect(flat(expected[1]).some((v) => v === 1 || v === 0)).toBe(true);
      tf.dispose([x, x0, y]);
      model.dispose();
    });

    it('PGD+TE and TRADES(+TE) first steps from a fixed start equal the naive ones', () => {
      const { model, x, y, x0 } = setup();
      const Z0 = naive.forward(X0, W, b);
      const Znat = naive.forward(X, W, b);
      // w large enough that the TE term flips some gradient signs (2 of 12 for PGD+TE, 7 for TRADES+TE)
      const w = 20;
      const beta = 6;
      const targets = tf.tensor2d(TARGETS);
      const logitsNat = model.apply(x, 'eval');

      const gPgdTe = naive.backToInput(naive.add(naive.ce(Z0, Y).dZ, naive.te(Z0, TARGETS, w).dZ), W);
      const a = pgdLinfSteps(model, x, y, x0, {
        eps: EPS,
        alpha: ALPHA,
        steps: 1,
        objective: withTePenalty(ceObjective(), { weight: w, targets }),
      });
      close(a.dataSync(), flat(naive.linfStep(X, X0, gPgdTe, EPS, ALPHA)), 1e-6, 'pgd+te step');

      const gKl = naive.backToInput(naive.klSum(Znat, Z0).dZ, W);
      const k = pgdLinfSteps(model, x, y, x0, { eps: EPS, alpha: ALPHA, steps: 1, objective: tradesKlObjective(logitsNat) });
      close(k.dataSync(), flat(naive.linfStep(X, X0, gKl, EPS, ALPHA)), 1e-6, 'trades step');

      const klTe = naive.add(
        naive.klSum(Znat, Z0).dZ.map((r) => r.map((v) => (beta / 3) * v)),
        naive.te(Z0, TARGETS, w).dZ,
      );
      const gKlTe = naive.backToInput(klTe, W);
      const objective = withTePenalty(tradesKlObjective(logitsNat, { scale: beta / 3 }), { weight: w, targets });
      const kt = pgdLinfSteps(model, x, y, x0, { eps: EPS, alpha: ALPHA, steps: 1, objective });
      close(kt.dataSync(), flat(naive.linfStep(X, X0, gKlTe, EPS, ALPHA)), 1e-6, 'trades+te step');

      const l2 = pgdL2Steps(model, x, y, x0, { eps: 0.05, alpha: 0.04, steps: 1, objective: tradesKlObjective(logitsNat) });
      close(l2.dataSync(), flat(naive.l2Step(X, X0, gKl, 0.05, 0.04)), 1e-6, 'trades l2 step');
      tf.dispose([a, k, kt, l2, targets, logitsNat, x, x0, y]);
      model.dispose();
    });

    it('the TRADES attack draws row i\'s start from rowStartSeed(deriveSeed(seed, "attack-start", 0), i) as x + 0.001·N(0, I)', () => {
      const { model, x, y, x0 } = setup();
      const noise = X.map((_, i) => new Rng(rowStartSeed(deriveSeed(9, 'attack-start', 0), i)).fillNormal(new Float32Array(4), 0, 0.001));
      const start = X.map((r, i) => r.map((v, d) => v + noise[i][d]));
      const g = naive.backToInput(naive.klSum(naive.forward(X, W, b), naive.forward(start, W, b)).dZ, W);
      const xa = tradesKlAttack(model, x, y, 9, { eps: EPS, alpha: ALPHA, steps: 1 });
      close(xa.dataSync(), flat(naive.linfStep(X, start, g, EPS, ALPHA)), 1e-6, 'trades attack');
      tf.dispose([xa, x, x0, y]);
      model.dispose();
    });

    it('objective values and input gradients equal the naive ones (CE, KL, TE, TRADES, MART, CW, DLR)', () => {
      const { model, x, y, x0 } = setup();
      const targets = tf.tensor2d(TARGETS);
      const logitsNat = model.apply(x, 'eval');
      const Znat = naive.forward(X, W, b);
      const Z0 = naive.forward(X0, W, b);
      const valueAndGrad = (f: (logits: tf.Tensor2D) => tf.Scalar) =>
        tf.tidy(() => {
          const { value, grad } = tf.valueAndGrad((xx: tf.Tensor) => f(model.apply(xx as tf.Tensor4D, 'eval')))(x0);
          return { value: value.dataSync()[0], grad: Array.from(grad.dataSync()) };
        });

      let r = valueAndGrad((l) => crossEntropy(l, y));
      const ceRef = naive.ce(Z0, Y);
      close([r.value], [ceRef.value], 1e-6, 'ce value');
      close(r.grad, flat(naive.backToInput(ceRef.dZ, W)), 1e-6, 'ce grad');

      r = valueAndGrad((l) => tradesKlSum(logitsNat, l));
      const klRef = naive.klSum(Znat, Z0);
      close([r.value], [klRef.value], 1e-6, 'kl value');
      close(r.grad, flat(naive.backToInput(klRef.dZ, W)), 1e-6, 'kl grad');

      r = valueAndGrad((l) => tePenalty(l, targets, 300));
      const teRef = naive.te(Z0, TARGETS, 300);
      close([r.value], [teRef.value], 1e-4, 'te value');
      close(r.grad, flat(naive.backToInput(teRef.dZ, W)), 1e-4, 'te grad');

      // TRADES' training loss at β = 6: CE(f(x)) + 6·KL_sum/B, gradient w.r.t. x′ (the KL part)
      r = valueAndGrad((l) => tradesLoss(logitsNat, l, y, 6));
      close([r.value], [naive.ce(Znat, Y).value + (6 * klRef.value) / 3], 1e-5, 'trades loss');
      close(
        r.grad,
        flat(naive.backToInput(klRef.dZ, W)).map((v) => (6 * v) / 3),
        1e-6,
        'trades loss grad',
      );

      const fd = (f: (Xa: naive.Mat) => number) => flat(naive.finiteDiff(f, X0));
      r = valueAndGrad((l) => martLoss(logitsNat, l, y, 6));
      close([r.value], [naive.mart(Znat, Z0, Y, 6)], 1e-5, 'mart value');
      close(
        r.grad,
        fd((Xa) => naive.mart(Znat, naive.forward(Xa, W, b), Y, 6)),
        1e-4,
        'mart grad',
      );

      const cwRef = (Z: naive.Mat) => Z.reduce((a, z, i) => a + Math.max(...z.filter((_, k) => k !== Y[i])) - z[Y[i]], 0) / Z.length;
      r = valueAndGrad((l) => cwMargin(l, y));
      close([r.value], [cwRef(Z0)], 1e-6, 'cw value');
      close(
        r.grad,
        fd((Xa) => cwRef(naive.forward(Xa, W, b))),
        1e-5,
        'cw grad',
      );

      const dlrRef = (Z: naive.Mat) =>
        Z.reduce((a, z, i) => {
          const s = [...z].sort((p, q) => q - p);
          return a - (z[Y[i]] - Math.max(...z.filter((_, k) => k !== Y[i]))) / (s[0] - s[2] + 1e-12);
        }, 0);
      r = valueAndGrad((l) => dlrLoss(l, y));
      close([r.value], [dlrRef(Z0)], 1e-5, 'dlr value');
      close(
        r.grad,
        fd((Xa) => dlrRef(naive.forward(Xa, W, b))),
        1e-4,
        'dlr grad',
      );
      tf.dispose([targets, logitsNat, x, x0, y]);
      model.dispose();
    });

    it('APGD-CE with one iteration equals the naive AutoAttack iteration from the documented start', () => {
      const { model, x, y, x0 } = setup();
      const eps = 0.05;
      // start: x + ε·t/‖t‖∞, t ~ U(−1, 1) per example (restart 0 draws from deriveSeed(seed, 'attack-start', 0))
      // APGD attacks only the examples classified correctly on x.
      const Znat = naive.forward(X, W, b);
      const attacked = Znat.map((z, i) => z.indexOf(Math.max(...z)) === Y[i]);
      const idx = attacked.map((a, i) => (a ? i : -1)).filter((i) => i >= 0);
      expect(idx.length).toBeGreaterThan(0);
      const tAll = new Rng(deriveSeed(5, 'attack-start', 0)).fillUniform(new Float32Array(idx.length * 4), -1, 1);
      const Xs = idx.map((i) => X[i]);
      const Ys = idx.map((i) => Y[i]);
      const start = Xs.map((r, j) => {
        const t = Array.from(tAll.subarray(j * 4, j * 4 + 4));
        const m = Math.max(...t.map(Math.abs));
        return r.map((v, d) => naive.clamp01(v + (eps * t[d]) / (m + 1e-12)));
      });
      const ceIndiv = (Xa: naive.Mat) => naive.forward(Xa, W, b).map((z, j) => -Math.log(naive.softmax(z)[Ys[j]]));
      const g0 = naive.backToInput(naive.ce(naive.forward(start, W, b), Ys).dZ, W);
      const x1 = naive.linfStep(Xs, start, g0, eps, 2 * eps);
      const Z1 = naive.forward(x1, W, b);
      const l0 = ceIndiv(start);
      const l1 = ceIndiv(x1);
      const want = X.map((r) => [...r]);
      idx.forEach((i, j) => {
        const wrong = Z1[j].indexOf(Math.max(...Z1[j])) !== Ys[j];
        // misclassified → that iterate; else the higher-loss one of start and x1
        want[i] = wrong || l1[j] > l0[j] ? x1[j] : start[j];
      });
      const xa = apgdCe(model, x, y, 5, { eps, steps: 1 });
      close(xa.dataSync(), flat(want), 1e-6, 'apgd 1 step');
      tf.dispose([xa, x, x0, y]);
      model.dispose();
    });
  });
}
