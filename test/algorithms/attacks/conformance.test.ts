import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { AtflowError } from '../../../src/core/errors';
import type { Model } from '../../../src/core/model';
import {
  apgdCe,
  apgdCheckpoints,
  apgdDlr,
  pgdL2,
  pgdLinf,
  renormL2,
  startPoint,
  tradesKlAttack,
  type Attack,
  type AttackOptions,
} from '../../../src/algorithms/attacks';
import { defaultRegistry } from '../../../src/run/default-registry';
import { crossEntropyPerExample } from '../../../src/algorithms/objectives';
import { denseModel, quadrantData, trainedQuadrantMlp } from './tiny-model';

/** The conformance suite every backend must pass (docs/algorithms.md §4; issue 5 "Done means"). */

const EPS = 0.15;
const SLACK = 1e-6;

function linfPerExample(a: tf.Tensor4D, b: tf.Tensor4D): Float32Array {
  return tf.tidy(() => tf.max(tf.abs(tf.reshape(tf.sub(a, b), [a.shape[0], -1])), 1).dataSync() as Float32Array);
}
function l2PerExample(a: tf.Tensor4D, b: tf.Tensor4D): Float32Array {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.reshape(tf.sub(a, b), [a.shape[0], -1])), 1)).dataSync() as Float32Array);
}
function ceOf(model: Model, x: tf.Tensor4D, y: tf.Tensor1D): Float32Array {
  return tf.tidy(() => crossEntropyPerExample(model.apply(x, 'eval'), y).dataSync() as Float32Array);
}
function accuracy(model: Model, x: tf.Tensor4D, y: tf.Tensor1D): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.apply(x, 'eval'), 1), y), 'float32')).dataSync()[0]);
}
/** Attacks are looked up in the registry (the built-ins). */
const registry = defaultRegistry();
const getAttack = (name: string) => registry.create<Attack<AttackOptions>, unknown>('attack', name, {});
type AttackName = 'fgsm' | 'pgd' | 'pgd-l2' | 'trades-kl' | 'cw' | 'apgd-ce' | 'apgd-dlr';
const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

/** Every registered attack, with options that exercise it at ε = EPS. */
const ALL: { name: AttackName; norm: 'linf' | 'l2'; options: AttackOptions }[] = [
  { name: 'fgsm', norm: 'linf', options: { eps: EPS, alpha: EPS, steps: 1 } },
  { name: 'pgd', norm: 'linf', options: { eps: EPS, alpha: 0.04, steps: 5, restarts: 2 } },
  { name: 'pgd', norm: 'linf', options: { eps: EPS, alpha: 0.04, steps: 5, randomStart: 'uniform-clamped' } },
  { name: 'pgd', norm: 'l2', options: { eps: 0.5, alpha: 0.2, steps: 5, norm: 'l2' } },
  { name: 'pgd-l2', norm: 'l2', options: { eps: 0.5, alpha: 0.2, steps: 5, restarts: 2 } },
  { name: 'trades-kl', norm: 'linf', options: { eps: EPS, alpha: 0.04, steps: 5 } },
  { name: 'trades-kl', norm: 'l2', options: { eps: 0.5, alpha: 0.2, steps: 5, norm: 'l2' } },
  { name: 'cw', norm: 'linf', options: { eps: EPS, alpha: 0.04, steps: 5 } },
  { name: 'apgd-ce', norm: 'linf', options: { eps: EPS, alpha: 0, steps: 10, restarts: 2 } },
  { name: 'apgd-dlr', norm: 'linf', options: { eps: EPS, alpha: 0, steps: 10 } },
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`attack conformance on ${backend}`, () => {
    let model: Model;
    let x: tf.Tensor4D;
    let y: tf.Tensor1D;

    beforeAll(async () => {
      await initBackend(backend);
      model = trainedQuadrantMlp();
      const d = quadrantData(32, 99);
      x = tf.tensor4d(d.x, d.shape);
      y = tf.tensor1d(d.y, 'int32');
    });
    afterAll(() => {
      tf.dispose([x, y]);
      model.dispose();
    });

    it('the fixture model is trained (clean accuracy ≥ 90%) yet attackable', () => {
      expect(accuracy(model, x, y)).toBeGreaterThanOrEqual(0.9);
    });

    it('ε = 0 returns x exactly, for every attack', () => {
      for (const { name, options } of ALL) {
        const xAdv = getAttack(name)(model, x, y, 3, { ...options, eps: 0 });
        expect({ name, same: Array.from(xAdv.dataSync()).every((v, i) => v === x.dataSync()[i]) }).toEqual({ name, same: true });
        xAdv.dispose();
      }
    });

    it('every x′ is inside the ε-ball (ℓ∞ or ℓ2, 1e-6 slack) and in [0, 1], and the tensor count returns to baseline', () => {
      for (const { name, norm, options } of ALL) {
        const before = tf.memory().numTensors;
        const xAdv = getAttack(name)(model, x, y, 5, options);
        expect(tf.memory().numTensors).toBe(before + 1);
        const dist = norm === 'linf' ? linfPerExample(xAdv, x) : l2PerExample(xAdv, x);
        expect({ name, norm, maxDist: Math.max(...dist) <= options.eps + SLACK }).toEqual({ name, norm, maxDist: true });
        const v = xAdv.dataSync();
        expect({ name, inBox: v.every((t) => t >= 0 && t <= 1) }).toEqual({ name, inBox: true });
        // the attack did something (for ε > 0 the point moved)
        expect(Math.max(...dist)).toBeGreaterThan(0);
        xAdv.dispose();
        expect(tf.memory().numTensors).toBe(before);
      }
    });

    it('more PGD steps never lower the loss on average', () => {
      const losses = [1, 3, 10].map((steps) => {
        const xAdv = pgdLinf(model, x, y, 11, { eps: EPS, alpha: EPS / 4, steps });
        const l = mean(ceOf(model, xAdv, y));
        xAdv.dispose();
        return l;
      });
      const clean = mean(ceOf(model, x, y));
      expect(losses[0]).toBeGreaterThan(clean);
      expect(losses[1]).toBeGreaterThanOrEqual(losses[0]);
      expect(losses[2]).toBeGreaterThanOrEqual(losses[1]);
    });

    it('restarts are never worse per example than one restart (same seed)', () => {
      for (const attack of [pgdLinf, pgdL2]) {
        const opts = attack === pgdLinf ? { eps: EPS, alpha: 0.04, steps: 3 } : { eps: 0.5, alpha: 0.2, steps: 3 };
        const one = attack(model, x, y, 21, opts);
        const three = attack(model, x, y, 21, { ...opts, restarts: 3 });
        const l1 = ceOf(model, one, y);
        const l3 = ceOf(model, three, y);
        for (let i = 0; i < l1.length; i++) expect(l3[i]).toBeGreaterThanOrEqual(l1[i]);
        expect(mean(l3)).toBeGreaterThan(mean(l1));
        tf.dispose([one, three]);
      }
    });

    it('is deterministic: same seed → identical x′; another seed → another start', () => {
      for (const { name, options } of ALL) {
        const a = getAttack(name)(model, x, y, 42, options);
        const b = getAttack(name)(model, x, y, 42, options);
        expect({ name, equal: Array.from(a.dataSync()).every((v, i) => v === b.dataSync()[i]) }).toEqual({ name, equal: true });
        tf.dispose([a, b]);
      }
      const a = pgdLinf(model, x, y, 1, { eps: EPS, alpha: 0.04, steps: 2 });
      const b = pgdLinf(model, x, y, 2, { eps: EPS, alpha: 0.04, steps: 2 });
      expect(Array.from(a.dataSync()).some((v, i) => v !== b.dataSync()[i])).toBe(true);
      tf.dispose([a, b]);
    });

    it('APGD reduces accuracy at least as much as PGD with the same iterations', () => {
      const steps = 20;
      const p = pgdLinf(model, x, y, 8, { eps: EPS, alpha: EPS / 4, steps });
      const a = apgdCe(model, x, y, 8, { eps: EPS, steps });
      const accPgd = accuracy(model, p, y);
      const accApgd = accuracy(model, a, y);
      expect(accPgd).toBeLessThan(accuracy(model, x, y));
      expect(accApgd).toBeLessThanOrEqual(accPgd);
      tf.dispose([p, a]);
    });

    it('APGD-DLR on 2 classes throws a clear AtflowError', () => {
      const two = denseModel(
        [
          [1, -1],
          [0.5, 0.2],
          [0, 1],
          [-1, 0],
        ],
        [0, 0],
        [2, 2, 1],
      );
      const x2 = tf.fill([2, 2, 2, 1], 0.5) as tf.Tensor4D;
      const y2 = tf.tensor1d([0, 1], 'int32');
      expect(() => apgdDlr(two, x2, y2, 0, { eps: 0.1, steps: 5 })).toThrow(AtflowError);
      expect(() => apgdDlr(two, x2, y2, 0, { eps: 0.1, steps: 5 })).toThrow(/DLR loss needs at least 3 classes.*the model has 2.*apgd-ce/);
      tf.dispose([x2, y2]);
      two.dispose();
    });

    it('random starts follow the authors: uniform unclamped, uniform-clamped, 0.001·N(0, I)', () => {
      tf.tidy(() => {
        const zeros = tf.zeros([4, 6, 6, 1]) as tf.Tensor4D;
        const u = startPoint(zeros, 0.1, 'uniform', 1).dataSync();
        expect(Math.min(...u)).toBeLessThan(0); // not clamped before the first step (docs/algorithms.md §12.2)
        expect(Math.max(...u.map(Math.abs))).toBeLessThanOrEqual(0.1);
        const uc = startPoint(zeros, 0.1, 'uniform-clamped', 1).dataSync();
        expect(Math.min(...uc)).toBe(0);
        expect(Math.max(...uc)).toBeGreaterThan(0.05);
        const n = startPoint(zeros, 0.1, 'normal', 1).dataSync();
        const sd = Math.sqrt(mean(n.map((v) => v * v)));
        expect(sd).toBeGreaterThan(0.0008);
        expect(sd).toBeLessThan(0.0012);
        expect(Array.from(startPoint(zeros, 0.1, 'none', 1).dataSync()).every((v) => v === 0)).toBe(true);
        // steps = 0 returns the start itself: the unclamped start is visible
        const x0 = pgdLinf(model, zeros, tf.tensor1d([0, 1, 2, 3], 'int32'), 1, { eps: 0.1, alpha: 0.01, steps: 0 });
        expect(Math.min(...x0.dataSync())).toBeLessThan(0);
      });
    });

    it('ℓ2 renorm is torch.renorm(p=2, dim=0, maxnorm=ε): ×ε/(‖δ‖+1e−7) above ε, unchanged below', () => {
      tf.tidy(() => {
        // example 0: δ = (3, 4, 0, 0), ‖δ‖ = 5 > 1; example 1: (0.3, 0, 0, 0.4), ‖δ‖ = 0.5 ≤ 1
        const d = tf.tensor4d([3, 4, 0, 0, 0.3, 0, 0, 0.4], [2, 2, 2, 1]);
        const f = 1 / (5 + 1e-7);
        const got = renormL2(d, 1).dataSync();
        const want = [3 * f, 4 * f, 0, 0, 0.3, 0, 0, 0.4];
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-7);
      });
    });

    it('the TRADES attack accepts precomputed clean logits and gives the same x′ as computing them itself', () => {
      const logitsNat = model.apply(x, 'eval');
      const a = tradesKlAttack(model, x, y, 4, { eps: EPS, alpha: 0.04, steps: 3 });
      const b = tradesKlAttack(model, x, y, 4, { eps: EPS, alpha: 0.04, steps: 3, logitsNat });
      expect(Array.from(a.dataSync()).every((v, i) => v === b.dataSync()[i])).toBe(true);
      expect(logitsNat.isDisposed).toBe(false);
      tf.dispose([a, b, logitsNat]);
    });

    it("APGD checkpoints are the paper's p_j·N for N = 100: 22, 41, 57, 70, 80, 87, 93, 99", () => {
      // p0 = 0, p1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)
      expect(apgdCheckpoints(100).map((c) => c.at)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
      expect(apgdCheckpoints(100).map((c) => c.window)).toEqual([22, 19, 16, 13, 10, 7, 6, 6]);
    });

    it('rejects bad inputs with errors naming the field', () => {
      expect(() => pgdLinf(model, x, tf.tensor1d(new Float32Array(32)), 0, { eps: 0.1, alpha: 0.01, steps: 1 })).toThrow(/int32/);
      expect(() => pgdLinf(model, x, y, 0, { eps: -1, alpha: 0.01, steps: 1 })).toThrow(/options.eps/);
      expect(() => pgdLinf(model, x, y, 0, { eps: 0.1, alpha: 0.01, steps: 1.5 })).toThrow(/options.steps/);
      expect(() => pgdLinf(model, x, y, 0, { eps: 0.1, alpha: 0.01, steps: 1, randomStart: 'gauss' as never })).toThrow(
        /options.randomStart/,
      );
      expect(() => getAttack('pgdd')).toThrow(/did you mean 'pgd'/);
      const wrong = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
      expect(() => pgdLinf(model, wrong, tf.tensor1d([0, 1], 'int32'), 0, { eps: 0.1, alpha: 0.01, steps: 1 })).toThrow(
        /expects \[6, 6, 1\]/,
      );
      wrong.dispose();
    });
  });
}
